"""The provider protocol and the values that cross it.

A provider turns one `UpstreamCall` (an OpenAI-format request already validated by the gateway,
plus the deployment's upstream model name and the attempt's deadlines) into either a `Completion`
or an opened `CompletionStream`, both in OpenAI's wire format. Failover, deadlines and accounting
live in the gateway; a provider only speaks to its upstream and maps its errors into
`providers.errors`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, runtime_checkable

from pydantic import BeforeValidator, Field

# Re-exported: defined in their own modules, `records` compiled (see its docstring).
from providers.endpoint import Endpoint as Endpoint
from providers.records import Completion as Completion
from providers.records import Deadlines as Deadlines
from providers.records import UpstreamCall as UpstreamCall
from providers.records import Usage as Usage
from providers.records import call_headers as call_headers

# `enabled: "${OPENAI_API_KEY:+true}"` interpolates to "" when the variable is unset: read that as off.
EnvFlag = Annotated[bool, BeforeValidator(lambda v: False if v == "" else v)]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> Any:
    """`150ms`, `2s`, `1.5m`, `1h`, `14d` or a plain number of seconds."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 2s, 1m, 14d)")
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return value


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


class CompletionStream(Protocol):
    """An upstream stream, opened and checked through its first event.

    Iterating yields raw bytes holding complete OpenAI SSE events, ending with `data: [DONE]`.
    A stream the upstream breaks, or ends before a finish reason or `[DONE]`, raises an
    `UpstreamError` from the iteration instead of ending quietly. The caller always calls
    `aclose()` in `finally`: after a complete stream it returns the connection to the pool,
    otherwise it closes the connection so the upstream stops generating.
    """

    usage: Usage | None
    done: bool
    """True once the chunk just yielded holds `data: [DONE]`: the client has all of it (and `usage` is
    final), so a client that leaves now was served in full."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Provider(Protocol):
    @property
    def kind(self) -> str: ...

    async def complete(self, call: UpstreamCall) -> Completion:
        """Send a non-streaming request. Raises `UpstreamError` subclasses on any failure."""
        ...

    async def open_stream(self, call: UpstreamCall) -> CompletionStream:
        """Open a stream and read through its first event, so that a failure before the client's first
        byte can still fail over. Raises `UpstreamError` subclasses; nothing to close on error."""
        ...

    async def aclose(self) -> None:
        """Release resources owned by this provider (not the shared HTTP session)."""
        ...


@dataclass(frozen=True, slots=True)
class ServerLoad:
    """What a self-hosted server (vLLM) last reported about itself, for routing."""

    healthy: bool
    running: float | None = None
    waiting: float | None = None
    kv_cache_usage: float | None = None
    """Fraction of the KV cache in use, 0..1."""
    scraped_at: float | None = None
    error: str | None = None


@runtime_checkable
class ReportsLoad(Protocol):
    """A provider that watches its server in the background (health and load)."""

    async def start(self) -> None:
        """Start watching; called once the gateway runs. `aclose()` stops it."""
        ...

    def load(self) -> ServerLoad: ...


BodyFactory = Callable[[], AsyncIterator[bytes]]


@dataclass(frozen=True, slots=True)
class RawBody:
    """A request body sent as is, for endpoints the gateway does not translate (images, audio,
    moderations). `chunks()` can be called once per attempt: each call reads the body anew."""

    chunks: BodyFactory
    content_type: str
    length: int


class RawResponse(Protocol):
    """An upstream's 2xx answer, relayed as bytes. The caller calls `aclose()` in `finally`."""

    status: int
    content_type: str

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class RelaysRaw(Protocol):
    async def send_raw(self, call: UpstreamCall, body: RawBody) -> RawResponse:
        """Send `body` to the upstream's endpoint for `call.endpoint`, wait for the response headers and
        return the open response; non-2xx and transport failures raise `UpstreamError` subclasses."""
        ...
