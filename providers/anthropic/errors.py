"""Anthropic's error JSON → `UpstreamStatusError`. Pure.

Anthropic answers `{"type": "error", "error": {"type": "overloaded_error", "message": "..."}}`
(https://docs.anthropic.com/en/api/errors); the message is kept and the error type becomes the code.
"""

from __future__ import annotations

from typing import Any

import orjson

from providers.errors import UpstreamStatusError
from providers.http_transport import retry_after_seconds


def status_error(status: int, body: bytes, retry_after_header: str | None = None) -> UpstreamStatusError:
    """The error for an upstream answer with a non-2xx `status` and this body."""
    message, code = _error_message(body, f"upstream returned HTTP {status}")
    return UpstreamStatusError(status, message, code=code, retry_after=retry_after_seconds(retry_after_header))


def _error_message(body: bytes, fallback: str) -> tuple[str, str | None]:
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return (body.decode("utf-8", "replace").strip()[:500] or fallback), None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return fallback, None
    kind = error.get("type")
    return str(error.get("message") or fallback)[:2000], (str(kind) if kind else None)
