"""Serve the per-run quality reports over HTTP so the Dagster UI can link to them.

    python -m dagster_project.report_server --port 3001   # serves <GME_DATA_HOME>/reports

Assets link each report as ``$GME_DATA_REPORTS_URL/<run_id>/<asset>.html`` when that variable
is set (``make ui`` sets it and starts this server beside ``dagster dev``), else as a file:// URL.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os

from gme_data import settings


def report_url(path: os.PathLike | str) -> str:
    """The link shown in the UI for a report file."""
    base = os.environ.get("GME_DATA_REPORTS_URL", "").rstrip("/")
    path = os.path.abspath(path)
    root = str(settings.reports_dir())
    if base and path.startswith(root):
        return base + path[len(root):].replace(os.sep, "/")
    return "file://" + path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve gme_data quality reports")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    args = parser.parse_args(argv)
    root = settings.reports_dir()
    root.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    with http.server.ThreadingHTTPServer((args.host, args.port), handler) as srv:
        print(f"quality reports: http://{args.host}:{args.port}/ (from {root})")
        srv.serve_forever()


if __name__ == "__main__":
    main()
