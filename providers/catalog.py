"""The shipped, dated catalog of well-known models' capabilities and list prices (`catalog.json` beside this file)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
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
    key = _match(model, models)
    return models[key] if key is not None else None


def prices_date() -> str:
    return str(_catalog()["prices_updated"])


def price_entries(model: str) -> tuple[str, list[dict[str, Any]]] | None:
    """The catalog key and list-price entries (USD, as `policies.pricing.schedule_from_entries` reads
    them) for the model `lookup()` finds; None when the name is unknown or that model has no list price.

    The name is matched among all catalog models, not only the priced ones, so a shorter priced key
    never claims a name that a longer, unpriced catalog model owns. The entries are copies.
    """
    key = _match(model, _catalog()["models"])
    entries = _catalog().get("prices", {}).get(key) if key is not None else None
    if key is None or not entries:
        return None
    return key, [dict(entry) for entry in entries]


def _match(model: str, keys: Iterable[str]) -> str | None:
    """The key (as spelled in the catalog) that `model` names, by `lookup()`'s rules."""
    name = model.lower()
    if name.startswith("models/"):
        name = name[len("models/") :]
    by_lower = {k.lower(): k for k in keys}
    if name in by_lower:
        return by_lower[name]
    best = None
    for key in by_lower:
        if name.startswith(key) and _VERSION_SUFFIX.match(name, len(key)):
            if best is None or len(key) > len(best):
                best = key
    return by_lower[best] if best is not None else None
