"""The values that cross the provider protocol on every request, as compiled records.

`Usage`, `Deadlines`, `UpstreamCall` and `Completion` were frozen dataclasses: building one ran the
`__init__` that `dataclasses` generates, which sets each field through `object.__setattr__` (2.1, 1.6,
3.7 and 0.5 µs here by `timeit` on the 2-core development machine; each request builds one of each, or
more). They are `FrozenRecord`s now (see `policies/frozen_record.py`): the same fields, defaults,
equality, hash, repr and `replace()`, attributes that cannot be set again, built by compiled code.
`providers.base` re-exports them.
"""

from __future__ import annotations

from typing import Any, Final

from policies.frozen_record import FrozenRecord
from providers.deadline import DeadlineWheel
from providers.endpoint import Endpoint
from providers.usage_counts import openai_counts


class Usage(FrozenRecord):
    _fields = (
        "prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "estimated", "cache_write_tokens"
    )  # fmt: skip
    __slots__ = _fields
    prompt_tokens: Final[int]
    completion_tokens: Final[int]
    cached_tokens: Final[int]
    """Prompt tokens read from the upstream's cache (counted inside `prompt_tokens`)."""
    reasoning_tokens: Final[int]
    estimated: Final[bool]
    cache_write_tokens: Final[int]
    """Prompt tokens written to the upstream's cache (Anthropic's `cache_creation_input_tokens`, counted
    inside `prompt_tokens`; priced above plain input by Anthropic)."""

    def __init__(
        self,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cached_tokens: int = 0,
        reasoning_tokens: int = 0,
        estimated: bool = False,
        cache_write_tokens: int = 0,
    ) -> None:
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.cached_tokens = cached_tokens
        self.reasoning_tokens = reasoning_tokens
        self.estimated = estimated
        self.cache_write_tokens = cache_write_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_openai(cls, usage: Any) -> Usage | None:
        """Read OpenAI's `usage` object; None when absent or not an object (see `openai_counts`)."""
        counts = openai_counts(usage)
        if counts is None:
            return None
        prompt, completion, cached, reasoning = counts
        return Usage(prompt, completion, cached, reasoning)

    def to_openai(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


class Deadlines(FrozenRecord):
    """Absolute `loop.time()` instants for one attempt, decided by the gateway's retry plan, and the
    wheel that enforces them."""

    _fields = ("connect_timeout", "first_byte_at", "total_at", "timer")
    __slots__ = _fields
    connect_timeout: Final[float]
    first_byte_at: Final[float]
    total_at: Final[float]
    timer: Final[DeadlineWheel]

    def __init__(
        self, connect_timeout: float, first_byte_at: float, total_at: float, timer: DeadlineWheel | None = None
    ) -> None:
        self.connect_timeout = connect_timeout
        self.first_byte_at = first_byte_at
        self.total_at = total_at
        self.timer = DeadlineWheel() if timer is None else timer


class UpstreamCall(FrozenRecord):
    _fields = (
        "endpoint", "body", "model", "stream", "client_wants_usage", "deadlines", "request_id", "extra_headers"
    )  # fmt: skip
    __slots__ = _fields
    endpoint: Final[Endpoint]
    body: Final[dict[str, Any]]
    """The client's validated request. Providers copy before changing it: the same body is reused
    for the next attempt."""
    model: Final[str]
    """The deployment's upstream model name, which replaces the logical name in `body`."""
    stream: Final[bool]
    client_wants_usage: Final[bool]
    """The client asked for `stream_options.include_usage`; otherwise the usage chunk the gateway
    forces upstream for accounting is stripped from the client's stream."""
    deadlines: Final[Deadlines]
    request_id: Final[str]
    extra_headers: Final[tuple[tuple[str, str], ...]]
    """Headers to add to the upstream request (W3C `traceparent` when tracing is on)."""

    def __init__(
        self,
        endpoint: Endpoint,
        body: dict[str, Any],
        model: str,
        stream: bool,
        client_wants_usage: bool,
        deadlines: Deadlines,
        request_id: str,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.endpoint = endpoint
        self.body = body
        self.model = model
        self.stream = stream
        self.client_wants_usage = client_wants_usage
        self.deadlines = deadlines
        self.request_id = request_id
        self.extra_headers = extra_headers


def call_headers(headers: dict[str, str], call: UpstreamCall) -> dict[str, str]:
    """A provider's static headers plus the call's extra ones (the same dict when there are none)."""
    return {**headers, **dict(call.extra_headers)} if call.extra_headers else headers


class Completion(FrozenRecord):
    _fields = ("body", "usage")
    __slots__ = _fields
    body: Final[bytes]
    """OpenAI-format JSON body, sent to the client as is."""
    usage: Final[Usage | None]

    def __init__(self, body: bytes, usage: Usage | None) -> None:
        self.body = body
        self.usage = usage
