"""The shipped, dated catalog of well-known models' capabilities (`catalog.json` beside this file)."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

_VERSION_SUFFIX = re.compile(r"[-@:](\d[\w.-]*|latest|preview[\w.-]*|exp[\w.-]*)$")


@cache
def _catalog() -> dict[str, Any]:
    with resources.files("providers").joinpath("catalog.json").open("r", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def catalog_date() -> str:
    return str(_catalog()["updated"])


def lookup(model: str) -> dict[str, Any] | None:
    """The catalog entry for an upstream model name: exact (case-insensitive), else the longest entry the
    name starts with followed by a version suffix (`gpt-4o-2024-08-06` → `gpt-4o`,
    `claude-3-5-sonnet-20241022` → `claude-3-5-sonnet`, `gemini-2.5-pro-preview-05-06`); a suffix that
    names another model (`gpt-4o-minimal`) does not match."""
    models: dict[str, dict[str, Any]] = _catalog()["models"]
    name = model.lower()
    if name.startswith("models/"):
        name = name[len("models/") :]
    exact = {k.lower(): v for k, v in models.items()}
    if name in exact:
        return exact[name]
    best = None
    for key in exact:
        if name.startswith(key) and _VERSION_SUFFIX.match(name, len(key)):
            if best is None or len(key) > len(best):
                best = key
    return exact[best] if best is not None else None
