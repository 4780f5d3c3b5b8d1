"""Read, interpolate and validate a config file; every problem is reported with its YAML path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gateway.config.interpolate import MissingVariable, interpolate
from gateway.config.references import check_references
from gateway.config.schema import GatewayConfig
from gateway.provider_registry import provider_kinds

_PROVIDER_KINDS = provider_kinds()


class ConfigError(Exception):
    """A config that cannot be used. `problems` are `path: message` lines, never secret values."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{source}: invalid configuration\n" + "\n".join(f"  {p}" for p in self.problems))


def format_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


def load_config(path: str | Path, env: Mapping[str, str]) -> GatewayConfig:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [f"cannot read file: {exc.strerror or exc}"]) from None
    return parse_config(text, env, source)


def parse_config(text: str, env: Mapping[str, str], source: str = "<config>") -> GatewayConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{where}YAML syntax error: {problem}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, ["(root): the file must be a mapping of sections"])
    try:
        data = interpolate(raw, env)
    except ExceptionGroup as group:
        problems = [
            f"{format_path(e.path)}: environment variable {e.variable} is not set"
            f" (or give a default: ${{{e.variable}:-default}})"
            for e in group.exceptions
            if isinstance(e, MissingVariable)
        ]
        raise ConfigError(source, problems) from None
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_pydantic_problem(e) for e in exc.errors(include_input=False)]) from None
    issues = check_references(config)
    if issues:
        raise ConfigError(source, [f"{format_path(p)}: {m}" for p, m in issues])
    return config


def _pydantic_problem(error: Any) -> str:
    loc = list(error["loc"])
    kind = error["type"]
    if kind == "union_tag_invalid":
        tag = (error.get("ctx") or {}).get("tag", "")
        known = ", ".join(_PROVIDER_KINDS)
        return f"{format_path([*loc, 'kind'])}: unknown provider kind {tag!r} (known: {known})"
    if kind == "union_tag_not_found":
        return f"{format_path([*loc, 'kind'])}: missing provider kind (known: {', '.join(_PROVIDER_KINDS)})"
    if len(loc) >= 3 and loc[0] == "providers" and loc[2] in _PROVIDER_KINDS:
        del loc[2]  # pydantic puts the union tag in the path
    if kind == "extra_forbidden":
        return f"{format_path(loc)}: unknown field"
    if kind == "missing":
        return f"{format_path(loc)}: required field missing"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return f"{format_path(loc)}: {message}"
