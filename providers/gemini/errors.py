"""Google's error JSON → `UpstreamStatusError`. Pure.

Google answers `{"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED", "details": [...]}}`
(https://cloud.google.com/apis/design/errors); the message is kept and the `status` becomes the code.
Two details matter to the gateway:

- Gemini sends no `Retry-After` header on a 429: how long to wait is a `google.rpc.RetryInfo` detail,
  `"retryDelay": "47s"` (a protobuf duration, fractional seconds allowed). It becomes `retry_after`.
- An invalid API key is a 400 INVALID_ARGUMENT with the detail reason `API_KEY_INVALID`. That is the
  gateway's credential, not the client's request: it is treated as a 401, which the gateway answers
  with a 502 keeping Google's message instead of passing a 400 on as if the client were at fault.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from providers.errors import UpstreamStatusError
from providers.http_transport import retry_after_seconds

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def status_error(status: int, body: bytes, retry_after_header: str | None = None) -> UpstreamStatusError:
    """The error for an upstream answer with a non-2xx `status` and this body."""
    error = _error_object(body)
    fallback = f"upstream returned HTTP {status}"
    if error is None:
        text = body.decode("utf-8", "replace").strip()
        return UpstreamStatusError(status, text[:500] or fallback, retry_after=retry_after_seconds(retry_after_header))
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    if status == 400 and any(d.get("reason") == "API_KEY_INVALID" for d in details):
        status = 401
    retry_after = retry_after_seconds(retry_after_header)
    if retry_after is None:
        delay = next((d.get("retryDelay") for d in details if d.get("@type") == _RETRY_INFO), None)
        retry_after = _duration(delay)
    code = error.get("status")
    return UpstreamStatusError(
        status,
        str(error.get("message") or fallback)[:2000],
        code=str(code) if code else None,
        retry_after=retry_after,
    )


def _error_object(body: bytes) -> dict[str, Any] | None:
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, list) and data:  # the JSON-array form of streamGenerateContent wraps errors too
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else None


def _duration(value: Any) -> float | None:
    match = _DURATION.match(value) if isinstance(value, str) else None
    return float(match.group(1)) if match else None
