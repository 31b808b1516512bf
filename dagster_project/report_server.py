"""Serve the per-run quality reports over HTTP so the Dagster UI can link to them.

    python -m dagster_project.report_server --port 3001   # serves <GME_DATA_HOME>/reports

Assets link each report as ``$GME_DATA_REPORTS_URL/<run_id>/<asset>.html`` when that variable
is set (``make ui`` sets it and starts this server beside ``dagster dev``), else as a file:// URL.

The server lists no directories (a folder without ``index.html`` is a 404; the root shows a note) and answers only requests
whose ``Host`` header names an allowed host: loopback names by default, so a web page cannot read
reports through DNS rebinding. ``--allowed-hosts`` / ``$GME_DATA_REPORTS_ALLOWED_HOSTS`` (comma-separated
host names, ports ignored) replace that list, e.g. when serving on another interface.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import io
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from gme_data import settings


def report_url(path: os.PathLike | str) -> str:
    """The link shown in the UI for a report file."""
    base = os.environ.get("GME_DATA_REPORTS_URL", "").rstrip("/")
    path = os.path.abspath(path)
    root = str(settings.reports_dir())
    if base and path.startswith(root):
        return base + quote(path[len(root):].replace(os.sep, "/"))  # file names hold quoted keys: %2F -> %252F
    return "file://" + quote(path)


#: Host names a request may address by default: this machine's loopback names only.
LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")


def allowed_hosts_from_env() -> tuple[str, ...]:
    """``$GME_DATA_REPORTS_ALLOWED_HOSTS`` (comma-separated), else :data:`LOOPBACK_HOSTS`."""
    raw = os.environ.get("GME_DATA_REPORTS_ALLOWED_HOSTS", "")
    names = tuple(h.strip() for h in raw.split(",") if h.strip())
    return names or LOOPBACK_HOSTS


def host_name(header: str) -> str:
    """The host part of a ``Host`` header (port and IPv6 brackets removed, lower case)."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class ReportRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Static files of the reports folder: no directory listings, only allowed ``Host`` headers."""

    allowed_hosts: frozenset[str] = frozenset(LOOPBACK_HOSTS)

    def send_head(self):
        host = self.headers.get("Host")
        if host is None or host_name(host) not in self.allowed_hosts:
            self.send_error(403, "Forbidden host", f"Host {host!r} is not an allowed name for this report server")
            return None
        return super().send_head()

    def list_directory(self, path):
        if os.path.abspath(path) == os.path.abspath(self.directory):  # the root: a note, not a listing
            body = (b"<!doctype html><html><head><meta charset='utf-8'><title>gme_data quality reports</title>"
                    b"</head><body><p>gme_data quality reports: open a report from its link in the Dagster UI."
                    b"</p></body></html>")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return io.BytesIO(body)
        self.send_error(404, "Not found", "directory listings are disabled")
        return None


def make_server(root: str | os.PathLike, host: str = "127.0.0.1", port: int = 3001,
                allowed_hosts: Iterable[str] | None = None) -> http.server.ThreadingHTTPServer:
    """A report server for ``root`` (not yet serving)."""
    names = frozenset(host_name(h) for h in (allowed_hosts or allowed_hosts_from_env()))
    handler_cls = type("BoundReportRequestHandler", (ReportRequestHandler,), {"allowed_hosts": names})
    handler = functools.partial(handler_cls, directory=str(root))
    return http.server.ThreadingHTTPServer((host, port), handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve gme_data quality reports")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    parser.add_argument("--allowed-hosts", default="",
                        help="comma-separated Host names to answer (default: $GME_DATA_REPORTS_ALLOWED_HOSTS, "
                             "else 127.0.0.1, localhost, ::1)")
    args = parser.parse_args(argv)
    root = Path(settings.reports_dir())
    root.mkdir(parents=True, exist_ok=True)
    allowed = [h for h in args.allowed_hosts.split(",") if h.strip()] or None
    with make_server(root, args.host, args.port, allowed) as srv:
        names = ", ".join(sorted(srv.RequestHandlerClass.func.allowed_hosts))
        print(f"quality reports: http://{args.host}:{args.port}/ (from {root}; Host names answered: {names})",
              flush=True)
        srv.serve_forever()


if __name__ == "__main__":
    main()
