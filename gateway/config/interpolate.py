"""`${VAR}`, `${VAR:-default}` and `${VAR:+value}` in YAML string values; `$$` is a literal `$`.

Interpolation runs on parsed values (never on the YAML text), so a variable cannot inject structure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PATTERN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\+)([^}]*))?\}")


class MissingVariable(Exception):
    def __init__(self, path: tuple[str | int, ...], variable: str) -> None:
        super().__init__(variable)
        self.path = path
        self.variable = variable


def interpolate(value: Any, env: Mapping[str, str], path: tuple[str | int, ...] = ()) -> Any:
    """A copy of `value` with every string interpolated. Raises the first `MissingVariable`s as a list."""
    errors: list[MissingVariable] = []
    result = _walk(value, env, path, errors)
    if errors:
        raise ExceptionGroup("missing environment variables", errors)
    return result


def _walk(value: Any, env: Mapping[str, str], path: tuple[str | int, ...], errors: list[MissingVariable]) -> Any:
    if isinstance(value, str):
        return _string(value, env, path, errors)
    if isinstance(value, dict):
        return {k: _walk(v, env, (*path, str(k)), errors) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, env, (*path, i), errors) for i, v in enumerate(value)]
    return value


def _string(text: str, env: Mapping[str, str], path: tuple[str | int, ...], errors: list[MissingVariable]) -> str:
    if "$" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, word = match.group(1), match.group(2), match.group(3) or ""
        current = env.get(name, "")
        if operator == ":-":
            return current or word
        if operator == ":+":
            return word if current else ""
        if name not in env:
            errors.append(MissingVariable(path, name))
            return ""
        return current

    return _PATTERN.sub(replace, text)
