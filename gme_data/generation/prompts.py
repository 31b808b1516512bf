"""Versioned prompt templates and the JSON schemas their answers must satisfy.

Templates live in ``gme_data/generation/prompts/<name>_v<N>.txt`` with a ``[system]`` and a
``[user]`` section and ``{{placeholder}}`` fields. A template's version string is
``"<name>@v<N>+<sha1[:8] of the file>"``, so an edited file gets a new version in every output row.
A prompt set other than the standard one adds its name as a suffix (``doc2query_small_v1.txt``: few-shot
prompts for small local models) and shares the standard prompt's answer schema.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from gme_data.errors import InvalidInputError

PROMPT_DIR = Path(__file__).parent / "prompts"
_FIELD = re.compile(r"\{\{(\w+)\}\}")
_FILE = re.compile(r"^(?P<name>[a-z0-9_]+)_v(?P<version>\d+)\.txt$")

#: The schema each prompt's JSON answer must satisfy.
SCHEMAS: dict[str, dict[str, Any]] = {
    "doc2query": {
        "type": "object",
        "properties": {"query": {"type": "string"}, "answer": {"type": "string"}},
        "required": ["query", "answer"],
        "additionalProperties": False,
    },
    "entity_rewrite": {
        "type": "object",
        "properties": {"entity": {"type": "string"}, "category": {"type": "string"},
                       "rewritten_query": {"type": "string"}},
        "required": ["entity", "category", "rewritten_query"],
        "additionalProperties": False,
    },
    "caption_query": {
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
        "additionalProperties": False,
    },
}

#: Prompt-set suffixes of template names (``doc2query_small`` answers with the ``doc2query`` schema).
PROMPT_SET_SUFFIXES = ("_small",)


def schema_name(name: str) -> str:
    """The answer schema's name for a template name (its prompt-set suffix removed)."""
    for suffix in PROMPT_SET_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "es": "Spanish", "any": "the paragraph's language"}


@dataclass(frozen=True)
class PromptTemplate:
    """One template file: ``name`` (e.g. ``"doc2query"``), ``version`` (``"doc2query@v1+1a2b3c4d"``)."""

    name: str
    number: int
    system: str
    user: str
    sha: str

    @property
    def version(self) -> str:
        return f"{self.name}@v{self.number}+{self.sha}"

    @property
    def fields(self) -> set[str]:
        return set(_FIELD.findall(self.system)) | set(_FIELD.findall(self.user))

    @property
    def static_text(self) -> str:
        """The template's own words (instructions and few-shot examples), placeholders removed."""
        return _FIELD.sub(" ", f"{self.system}\n{self.user}")

    @property
    def schema(self) -> dict[str, Any]:
        return SCHEMAS[schema_name(self.name)]

    def render(self, **values: Any) -> tuple[str, str]:
        """(system, user) texts with every ``{{field}}`` filled; a missing field is an error."""
        missing = sorted(self.fields - set(values))
        if missing:
            raise InvalidInputError(f"prompt {self.version}: missing value(s) for {missing}")

        def fill(text: str) -> str:
            return _FIELD.sub(lambda m: "" if values[m.group(1)] is None else str(values[m.group(1)]), text)

        return fill(self.system).strip(), fill(self.user).strip()


def parse_template(name: str, number: int, text: str) -> PromptTemplate:
    """Split a template file's text into its ``[system]`` and ``[user]`` sections."""
    parts = re.split(r"^\[(system|user)\]\s*$", text, flags=re.MULTILINE)
    sections = {parts[i]: parts[i + 1].strip("\n") for i in range(1, len(parts) - 1, 2)}
    if "user" not in sections:
        raise InvalidInputError(f"prompt template {name}_v{number}.txt: needs a [user] section")
    if schema_name(name) not in SCHEMAS:
        raise InvalidInputError(f"prompt template {name}_v{number}.txt: no answer schema for {name!r}")
    sha = hashlib.sha1(text.encode()).hexdigest()[:8]
    return PromptTemplate(name, number, sections.get("system", ""), sections["user"], sha)


@lru_cache(maxsize=64)
def load_prompt(name: str, version: int | None = None, prompt_dir: str | None = None) -> PromptTemplate:
    """The template ``name`` at ``version`` (default: the highest ``_v<N>`` file present)."""
    folder = Path(prompt_dir) if prompt_dir else PROMPT_DIR
    found = {}
    for path in folder.glob(f"{name}_v*.txt"):
        m = _FILE.match(path.name)
        if m and m.group("name") == name:
            found[int(m.group("version"))] = path
    if not found:
        raise InvalidInputError(f"prompt template {name!r}: no file {name}_v<N>.txt in {folder}")
    number = version if version is not None else max(found)
    if number not in found:
        raise InvalidInputError(f"prompt template {name!r}: version {number} not in {sorted(found)} ({folder})")
    return parse_template(name, number, found[number].read_text(encoding="utf-8"))
