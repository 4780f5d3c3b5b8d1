from __future__ import annotations

import pytest

from policies.capabilities import UNKNOWN, Capabilities, Requirements, unmet
from providers.catalog import catalog_date, lookup


def never() -> int:
    raise AssertionError("the prompt must not be counted for a small body")


def test_unknown_never_excludes() -> None:
    needs = Requirements(chat=True, tools=True, vision=True, json_mode=True, streaming=True, max_output=10**6)
    assert unmet(UNKNOWN, needs, never) is None


@pytest.mark.parametrize(
    ("caps", "needs", "reason"),
    [
        (Capabilities(vision=False), Requirements(vision=True), "does not accept image input"),
        (Capabilities(tools=False), Requirements(tools=True), "does not support tools"),
        (Capabilities(chat=False), Requirements(chat=True), "is not a chat model"),
        (Capabilities(embeddings=False), Requirements(embeddings=True), "is not an embedding model"),
        (
            Capabilities(max_output=100),
            Requirements(max_output=101),
            "allows at most 100 output tokens (requested 101)",
        ),
    ],
)
def test_stated_incapacity_excludes(caps: Capabilities, needs: Requirements, reason: str) -> None:
    assert unmet(caps, needs, never) == reason


def test_context_window_counts_only_large_bodies() -> None:
    caps = Capabilities(context_window=1000)
    assert unmet(caps, Requirements(prompt_bytes=900, max_output=100), never) is None
    assert unmet(caps, Requirements(prompt_bytes=5000, max_output=100), lambda: 800) is None
    reason = unmet(caps, Requirements(prompt_bytes=5000, max_output=300), lambda: 800)
    assert reason == "has a context window of 1000 tokens; the prompt needs about 800 plus 300 for the output"


def test_override_merges_non_null_values() -> None:
    caps = Capabilities(vision=False, context_window=10).merged({"vision": True, "tools": None, "bogus": 1})
    assert (caps.vision, caps.tools, caps.context_window) == (True, None, 10)


def test_catalog_lookup_with_dated_versions() -> None:
    assert lookup("gpt-4o-2024-08-06") == lookup("gpt-4o")
    assert lookup("gpt-4o-mini-2024-07-18") == lookup("gpt-4o-mini"), "longest prefix wins"
    assert lookup("claude-3-5-sonnet-20241022")["context_window"] == 200000  # type: ignore[index]
    assert lookup("models/gemini-2.0-flash")["vision"] is True  # type: ignore[index]
    assert lookup("gpt-4o-minimal") is None and lookup("my-own-model") is None
    assert catalog_date() == "2026-11-22"
