"""Finding 14.10 (parts): markdown metadata shows data as text; the report server lists nothing and
answers only loopback Host names (DNS rebinding).

The report server runs as its own process (``python -m dagster_project.report_server``) on 127.0.0.1
and is asked with real HTTP requests; markdown is rendered with markdown-it (CommonMark + tables).
"""

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from markdown_it import MarkdownIt

from assets.common import gallery_md, md_table
from dagster_project.io_manager import ParquetIOManager
from quality.markdown import md_cell
from tests.support.processes import free_port, log_tail, stop_group

ROOT = Path(__file__).parents[2]
HOSTILE = [
    "![x](http://evil.example/pixel.png)",
    "[click me](http://evil.example/phish)",
    "<img src='http://evil.example/a.png'>",
    "<http://evil.example/auto>",
    "a | b\nc",
]


def _render(md: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(md)


def _assert_inert(html: str) -> None:
    assert "<img" not in html and "<a " not in html and "href=" not in html, html


def test_markdown_table_cells_render_remote_images_links_and_html_as_text() -> None:
    df = pd.DataFrame({"text": HOSTILE, "![h](http://evil.example/h.png)": range(len(HOSTILE))})
    html = _render(md_table(df))
    _assert_inert(html)
    assert html.count("<tr>") == len(HOSTILE) + 1  # a '|' or newline in a cell does not add rows/columns
    assert "![x](http://evil.example/pixel.png)" in html.replace("&quot;", '"')  # shown literally
    _assert_inert(_render(gallery_md([{"img": None, "t": t} for t in HOSTILE], "img", "t")))


def test_md_cell_keeps_ordinary_text_readable() -> None:
    for text in ("The oak is a tree.", "raw-0008b98725a98cc0", "3.14", "empty_text", "a*b_c"):
        assert _render(md_cell(text)).strip() == f"<p>{text}</p>"


def test_preview_metadata_of_a_real_stage_escapes_hostile_rows(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "var"
    monkeypatch.setenv("GME_DATA_HOME", str(home))
    monkeypatch.setenv("GME_DATA_STORAGE_URL", str(home / "storage"))
    monkeypatch.delenv("GME_DATA_REPORTS_URL", raising=False)
    inbox = home / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "hostile.jsonl").write_text("".join(json.dumps({"title": f"T{i}", "text": t}) + "\n"
                                                 for i, t in enumerate(HOSTILE)))
    from dagster_project.definitions import defs

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("source_shard", ["hostile"])
    res = defs.resolve_job_def("synthesis_job").execute_in_process(
        instance=instance, partition_key="hostile", asset_selection=[dg.AssetKey("raw_corpus")])
    assert res.success
    metadata = res.asset_materializations_for_node("raw_corpus")[0].metadata
    markdown = {k: v.value for k, v in metadata.items() if isinstance(v, dg.MarkdownMetadataValue)}
    assert "preview" in markdown and "evil\\.example" in markdown["preview"]  # shown, escaped
    for text in markdown.values():
        _assert_inert(_render(text))
    assert len(pd.read_parquet(ParquetIOManager().shard_url("raw_corpus").replace("*", "hostile"))) == len(HOSTILE)


@pytest.fixture()
def report_server(tmp_path: Path):
    """The real report server on 127.0.0.1 over a reports folder with one run's reports."""
    home = tmp_path / "var"
    run = home / "reports" / "run-1"
    run.mkdir(parents=True)
    (run / "raw_corpus__s.html").write_text("<html>report</html>")
    (run / "index.html").write_text("<html>index of run-1</html>")
    (home / "reports" / "run-2").mkdir()
    (home / "reports" / "run-2" / "candidates.html").write_text("<html>c</html>")
    port = free_port()
    log = tmp_path / "server.log"

    def start(extra_env: dict[str, str]) -> subprocess.Popen:
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "dagster_project.report_server", "--port", str(port)],
                                    cwd=ROOT, env={**os.environ, "GME_DATA_HOME": str(home), **extra_env},
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while "quality reports:" not in log_tail(log):
            assert proc.poll() is None and time.monotonic() < deadline, log_tail(log)
            time.sleep(0.05)
        return proc

    procs: list[subprocess.Popen] = []

    def launch(extra_env: dict[str, str] | None = None) -> int:
        for p in procs:
            stop_group(p)
        procs.append(start(extra_env or {}))
        return port

    yield launch
    for p in procs:
        stop_group(p)


def _get(port: int, path: str, host: str | None) -> tuple[int, str]:
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    con.putrequest("GET", path, skip_host=True)
    if host is not None:
        con.putheader("Host", host)
    con.endheaders()
    resp = con.getresponse()
    body = resp.read().decode(errors="replace")
    con.close()
    return resp.status, body


def test_report_server_refuses_foreign_host_headers(report_server) -> None:
    port = report_server()
    assert _get(port, "/run-1/raw_corpus__s.html", f"127.0.0.1:{port}") == (200, "<html>report</html>")
    assert _get(port, "/run-1/raw_corpus__s.html", f"localhost:{port}")[0] == 200
    assert _get(port, "/run-1/raw_corpus__s.html", f"[::1]:{port}")[0] == 200
    status, body = _get(port, "/run-1/raw_corpus__s.html", "evil.example")
    assert status == 403 and "report" not in body.split("evil.example")[0][-20:]
    assert _get(port, "/run-1/raw_corpus__s.html", f"evil.example:{port}")[0] == 403
    assert _get(port, "/run-1/raw_corpus__s.html", None)[0] == 403


def test_report_server_lists_no_directories_but_serves_index_pages(report_server) -> None:
    port = report_server()
    host = f"127.0.0.1:{port}"
    status, body = _get(port, "/run-2/", host)
    assert status == 404 and "candidates.html" not in body
    status, body = _get(port, "/", host)  # a note that the server is up, without the runs
    assert status == 200 and "quality reports" in body and "run-1" not in body and "run-2" not in body
    assert _get(port, "/run-1/", host) == (200, "<html>index of run-1</html>")


def test_report_server_host_allow_list_is_configurable(report_server) -> None:
    port = report_server({"GME_DATA_REPORTS_ALLOWED_HOSTS": "reports.internal"})
    assert _get(port, "/run-1/raw_corpus__s.html", f"reports.internal:{port}")[0] == 200
    assert _get(port, "/run-1/raw_corpus__s.html", f"127.0.0.1:{port}")[0] == 403


def test_gate_report_of_a_hostile_partition_stays_in_reports_and_is_served(report_server, tmp_path: Path,
                                                                          monkeypatch) -> None:
    """A real failed gate over rows with hostile text, on a partition key with ``../``: the check's
    markdown shows the examples as text; the HTML report stays under reports/ and its link works."""
    from dagster_project.report_server import report_url
    from quality.gates import run_gate
    from quality.report import render_markdown, write_report

    home = tmp_path / "var"
    monkeypatch.setenv("GME_DATA_HOME", str(home))
    df = pd.DataFrame({"id": [HOSTILE[0]] * 2, "title": ["t", "t"], "text": HOSTILE[:2], "image": [None, None],
                       "source": "s", "shard": "s", "url": [None, None]})
    result = run_gate(df, "raw_corpus", {"min_rows": 1, "max_rows": 100})
    assert not result.success and "evil" in json.dumps([o.examples for o in result.failed])
    _assert_inert(_render(render_markdown(result)))
    report = write_report(result, df, home / "reports", "raw_corpus", "run-3", "../../../ESCAPED")
    assert (home / "reports") in report.parents and not list(tmp_path.glob("ESCAPED*"))
    port = report_server()
    monkeypatch.setenv("GME_DATA_REPORTS_URL", f"http://127.0.0.1:{port}")
    url = report_url(report)
    status, body = _get(port, url.split(str(port), 1)[1], f"127.0.0.1:{port}")
    assert status == 200 and "Quality report" in body and "ESCAPED" in body
    index = _get(port, url.split(str(port), 1)[1].rsplit("/", 1)[0] + "/index.html", f"127.0.0.1:{port}")[1]
    href = index.split("href='", 1)[1].split("'", 1)[0]  # the run's index links the report by a working URL
    assert _get(port, f"/run-3/{href}", f"127.0.0.1:{port}") == (status, body)
