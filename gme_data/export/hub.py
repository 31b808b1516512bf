"""``push_to_hub`` of an exported folder (the card and ``data/*.parquet``), with the token kept private.

The token comes from an environment variable the caller names (never from run configuration,
which Dagster stores); it is passed to ``huggingface_hub`` only, and every error message is
redacted with :func:`gme_data.redaction.redact` before it is raised, logged or stored. Which
variables may hold it is the operator's choice, not a run's: ``GME_DATA_HUB_TOKEN_ENVS``
(comma-separated names or ``fnmatch`` patterns; default ``HF_TOKEN``), so a run config cannot send
another secret of the process to a hub endpoint it names.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gme_data.errors import ExportError, InvalidInputError
from gme_data.redaction import redact

TOKEN_ENVS_VAR = "GME_DATA_HUB_TOKEN_ENVS"
DEFAULT_TOKEN_ENVS: tuple[str, ...] = ("HF_TOKEN",)
#: The files of an export folder that go to the hub (the ``save_to_disk`` copy stays local).
HUB_PATTERNS: tuple[str, ...] = ("README.md", "data/*.parquet")


@dataclass
class HubTarget:
    """A hub dataset repository; ``token_env`` names the variable holding the token."""

    repo_id: str = ""
    token_env: str = "HF_TOKEN"
    private: bool = True
    endpoint: str | None = None

    def token(self) -> str | None:
        """The token, or None when the variable is unset; refuses a variable the operator has not admitted."""
        if not self.token_env:
            return None
        allowed = tuple(n.strip() for n in os.environ.get(TOKEN_ENVS_VAR, "").split(",") if n.strip()) \
            or DEFAULT_TOKEN_ENVS
        if not any(fnmatch.fnmatchcase(self.token_env, p) for p in allowed):
            raise InvalidInputError(f"hub push: token_env={self.token_env!r} is not an allowed token variable; the "
                                    f"operator admits variables in ${TOKEN_ENVS_VAR} (now: {', '.join(allowed)})")
        return os.environ.get(self.token_env, "").strip() or None

    def configured(self) -> bool:
        """True when both a repo id and a token are there (the push happens only then)."""
        return bool(self.repo_id.strip()) and self.token() is not None


def push_folder_to_hub(folder: str | Path, target: HubTarget) -> dict[str, Any]:
    """Create (if needed) the dataset repo and upload the card and Parquet files; returns
    ``{"repo_id", "url", "commit"}`` (no token)."""
    from huggingface_hub import HfApi

    root = Path(folder)
    if not (root / "README.md").is_file() or not any((root / "data").glob("*.parquet")):
        raise InvalidInputError(f"hub push: {root} is not an export folder (README.md and data/*.parquet)")
    repo_id = target.repo_id.strip()
    if repo_id.count("/") != 1:
        raise InvalidInputError(f"hub push: repo id {repo_id!r} is not 'owner/name'")
    token = target.token()
    if token is None:
        raise InvalidInputError(f"hub push: no token in the environment variable {target.token_env!r}")
    try:
        api = HfApi(endpoint=target.endpoint, token=token)
        api.create_repo(repo_id, repo_type="dataset", private=target.private, exist_ok=True)
        info = api.upload_folder(folder_path=str(root), repo_id=repo_id, repo_type="dataset",
                                 allow_patterns=list(HUB_PATTERNS), commit_message="gme_data export")
    except Exception as exc:  # any transport or hub error: re-raised without the token
        raise ExportError(redact(f"hub push to {repo_id} failed: {type(exc).__name__}: {exc}", [token])) from None
    return {"repo_id": repo_id, "url": redact(str(getattr(info, "repo_url", "") or ""), [token]),
            "commit": getattr(info, "oid", None)}
