"""OpenAI's `usage` object read into token counts, compiled (scripts/build_native.py): every response
and every usage chunk is read here, so `providers.records.Usage.from_openai` delegates to it."""

from __future__ import annotations

from typing import Any


def openai_counts(usage: Any) -> tuple[int, int, int, int] | None:
    """(prompt, completion, cached, reasoning) tokens of OpenAI's `usage` object; None when absent or
    not an object. A count is kept if it is an int >= 0, else 0."""
    if not isinstance(usage, dict):
        return None
    cached = reasoning = 0
    details = usage.get("prompt_tokens_details")
    if details and isinstance(details, dict):
        cached = _count(details.get("cached_tokens"))
    details = usage.get("completion_tokens_details")
    if details and isinstance(details, dict):
        reasoning = _count(details.get("reasoning_tokens"))
    return _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")), cached, reasoning


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
