"""OpenAI's `usage` object, read into `Usage`: counts that are not non-negative ints become 0."""

from __future__ import annotations

import pytest

from providers.base import Usage


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, None),
        ([], None),
        ({}, Usage()),
        ({"prompt_tokens": 5, "completion_tokens": 7}, Usage(5, 7)),
        ({"prompt_tokens": -1, "completion_tokens": "3"}, Usage(0, 0)),
        (
            {
                "prompt_tokens": 5,
                "completion_tokens": 1,
                "prompt_tokens_details": {"cached_tokens": 2},
                "completion_tokens_details": {"reasoning_tokens": 4},
            },
            Usage(5, 1, cached_tokens=2, reasoning_tokens=4),
        ),
        ({"prompt_tokens_details": None, "completion_tokens_details": []}, Usage()),
        ({"prompt_tokens_details": {"cached_tokens": -3}, "completion_tokens_details": "x"}, Usage()),
        ({"prompt_tokens": 3, "completion_tokens": 2.0}, Usage(3, 0)),
        ({"prompt_tokens": 2**70, "completion_tokens": True}, Usage(2**70, 1)),  # past 64 bits; bool is an int
    ],
)
def test_from_openai(usage: object, expected: Usage | None) -> None:
    assert Usage.from_openai(usage) == expected
