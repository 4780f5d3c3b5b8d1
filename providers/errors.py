"""The one error tree of Switchyard.

    GatewayError                    every error knows its HTTP status, OpenAI type/code and whether
    |                               trying another deployment may help (`retryable`)
    +-- InvalidRequest              400  malformed JSON, invalid field (param names the field)
    +-- AuthenticationFailed        401  missing or unknown key
    +-- PermissionDenied            403
    +-- NotFound                    404  unknown model or route
    +-- MethodNotAllowed            405
    +-- PayloadTooLarge             413
    +-- RateLimited                 429  a gateway rate limit (rpm/tpm); Retry-After
    |   +-- BudgetExceeded          429  code budget_exceeded: the budget cannot cover the estimate
    +-- ServiceUnavailable          503  draining, no deployment available
    +-- UpstreamError               an attempt against one deployment failed
    |   +-- UpstreamStatusError     the upstream answered with an error status (kept, with its message)
    |   +-- UpstreamConnectError    could not connect / connection reset        (502, retryable)
    |   +-- UpstreamTimeout         connect, first byte or total timeout        (504, retryable)
    |   +-- UpstreamProtocolError   malformed body or SSE, stream cut short     (502, retryable)
    +-- AllAttemptsFailed           every attempt failed; lists each attempt

Third-party exceptions (aiohttp, asyncio timeouts) are translated where they enter, in the
provider adapters; `gateway` renders any GatewayError with `error_body()`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson


class GatewayError(Exception):
    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "api_error"
    default_code: ClassVar[str | None] = None
    retryable: bool = False

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code

    @property
    def http_status(self) -> int:
        return self.status

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}

    def headers(self) -> list[tuple[bytes, bytes]]:
        return []


class InvalidRequest(GatewayError):
    status = 400
    error_type = "invalid_request_error"


def missing_parameter(name: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")


class AuthenticationFailed(GatewayError):
    status = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    error_type = "permission_error"


class NotFound(GatewayError):
    status = 404
    error_type = "invalid_request_error"


class MethodNotAllowed(GatewayError):
    status = 405
    error_type = "invalid_request_error"
    default_code = "method_not_allowed"


class PayloadTooLarge(GatewayError):
    status = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class RateLimited(GatewayError):
    status = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        code: str | None = None,
        extra_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
        self.extra_headers = list(extra_headers)

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = list(self.extra_headers)
        if self.retry_after is not None:
            out.append((b"retry-after", str(max(1, math.ceil(self.retry_after))).encode()))
        return out


class BudgetExceeded(RateLimited):
    error_type = "insufficient_quota"
    default_code = "budget_exceeded"


class ServiceUnavailable(GatewayError):
    status = 503
    error_type = "service_unavailable"

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, param=param, code=code)
        self.retry_after = retry_after

    def headers(self) -> list[tuple[bytes, bytes]]:
        if self.retry_after is None:
            return []
        return [(b"retry-after", str(max(1, math.ceil(self.retry_after))).encode())]


class UpstreamError(GatewayError):
    """One attempt against one deployment failed."""

    status = 502
    error_type = "upstream_error"
    retryable = True

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after

    @property
    def kind(self) -> str:
        """A bounded label for metrics (the code may come from the upstream and be anything)."""
        return self.default_code or "upstream_error"


class UpstreamConnectError(UpstreamError):
    default_code = "upstream_connect_error"


class UpstreamProtocolError(UpstreamError):
    default_code = "upstream_protocol_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    error_type = "timeout"
    default_code = "upstream_timeout"


# Statuses that describe the client's own request: passed through unchanged, never retried elsewhere.
_CLIENT_FAULT = frozenset({400, 404, 409, 413, 422})


class UpstreamStatusError(UpstreamError):
    """The upstream answered with a non-2xx status.

    429 and 5xx are retryable on another deployment. 400/404/409/413/422 are the client's fault and
    keep their status. 401/403 mean the gateway's own upstream credentials are wrong: that is not the
    client's fault, so they become a 502 that keeps the upstream's message.
    """

    def __init__(
        self,
        upstream_status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, retry_after=retry_after)
        self.upstream_status = upstream_status
        self.param = param
        self.retryable = upstream_status == 429 or upstream_status >= 500 or upstream_status == 408
        if upstream_status in _CLIENT_FAULT:
            self.error_type = "invalid_request_error"  # type: ignore[misc]
        elif upstream_status == 429:
            self.error_type = "rate_limit_error"  # type: ignore[misc]

    @property
    def kind(self) -> str:
        return f"upstream_status_{self.upstream_status}"

    @property
    def http_status(self) -> int:
        if self.upstream_status in _CLIENT_FAULT or self.upstream_status == 429:
            return self.upstream_status
        if self.upstream_status == 408:
            return 504
        return 502

    def headers(self) -> list[tuple[bytes, bytes]]:
        if self.retry_after is not None and self.upstream_status == 429:
            return [(b"retry-after", str(max(1, round(self.retry_after))).encode())]
        return []


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    deployment: str
    error: GatewayError


class AllAttemptsFailed(GatewayError):
    """Every attempt failed. The status follows the last error: 429 if the upstreams only rate-limited,
    504 after a timeout, 502 otherwise; the message keeps each upstream's own words."""

    error_type = "upstream_error"

    def __init__(self, attempts: Sequence[FailedAttempt], *, reason: str | None = None) -> None:
        self.attempts = list(attempts)
        parts = [f"{a.deployment}: {a.error.message}" for a in self.attempts]
        if reason:
            parts.append(reason)
        count = len(self.attempts)
        noun = "attempt" if count == 1 else "attempts"
        super().__init__(f"All {count} {noun} failed. " + "; ".join(parts), code="upstream_failed")
        last = self.attempts[-1].error if self.attempts else None
        self._last = last
        if last is not None and last.http_status < 500 and last.http_status != 429:
            # A client-fault status from the upstream (400, 404...) ends the loop: keep it.
            self.error_type = last.error_type  # type: ignore[misc]
            self.code = last.code
            self.param = last.param

    @property
    def http_status(self) -> int:
        if self._last is None:
            return 503
        if all(isinstance(a.error, UpstreamStatusError) and a.error.upstream_status == 429 for a in self.attempts):
            return 429
        return self._last.http_status

    def headers(self) -> list[tuple[bytes, bytes]]:
        return self._last.headers() if self._last is not None else []

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["attempts"] = [
            {"deployment": a.deployment, "status": a.error.http_status, "message": a.error.message}
            for a in self.attempts
        ]
        return body


def error_body(error: GatewayError) -> bytes:
    """OpenAI's error JSON for any gateway error."""
    return orjson.dumps({"error": error.to_dict()})


def message_from_upstream_body(body: bytes, fallback: str) -> tuple[str, str | None, str | None]:
    """Pull (message, code, param) out of an upstream error body, whatever its shape."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return (text[:500] or fallback), None, None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            message = err.get("message") or err.get("detail") or fallback
            code = err.get("code")
            param = err.get("param")
            return (
                str(message)[:2000],
                (str(code) if code is not None else None),
                (str(param) if param is not None else None),
            )
        if isinstance(err, str):
            return err[:2000], None, None
    return fallback, None, None
