"""Gateway errors as Anthropic's error JSON (https://docs.anthropic.com/en/api/errors).

The error type follows the HTTP status the gateway answers with, as Anthropic's own API does; a client
built on the `anthropic` SDK picks its exception class from the status, and reads the type and message
from the body.
"""

from __future__ import annotations

from typing import Any

import orjson

from providers.errors import GatewayError

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status; other 4xx are `invalid_request_error`, other 5xx `api_error`."""
    if status in _TYPES:
        return _TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def anthropic_error(error: GatewayError) -> dict[str, Any]:
    """The `{"type": "error", "error": {...}}` object for `error`, as a dict."""
    return {"type": "error", "error": {"type": anthropic_error_type(error.http_status), "message": error.message}}


def anthropic_error_body(error: GatewayError) -> bytes:
    """Anthropic's error JSON for any gateway error, to send with `error.http_status`."""
    return orjson.dumps(anthropic_error(error))
