from __future__ import annotations

import orjson

from providers.errors import (
    AllAttemptsFailed,
    FailedAttempt,
    UpstreamConnectError,
    UpstreamStatusError,
    UpstreamTimeout,
    error_body,
    message_from_upstream_body,
)


def test_upstream_status_mapping() -> None:
    assert UpstreamStatusError(500, "boom").http_status == 502 and UpstreamStatusError(500, "x").retryable
    assert UpstreamStatusError(429, "slow").http_status == 429 and UpstreamStatusError(429, "x").retryable
    bad = UpstreamStatusError(400, "bad field", param="temperature")
    assert bad.http_status == 400 and not bad.retryable and bad.error_type == "invalid_request_error"
    creds = UpstreamStatusError(401, "Incorrect API key")
    assert creds.http_status == 502 and not creds.retryable


def test_all_attempts_failed_status_and_body() -> None:
    attempts = [
        FailedAttempt("a", UpstreamStatusError(500, "upstream a exploded")),
        FailedAttempt("b", UpstreamTimeout("upstream first byte timeout")),
    ]
    error = AllAttemptsFailed(attempts)
    assert error.http_status == 504
    body = orjson.loads(error_body(error))["error"]
    assert "upstream a exploded" in body["message"] and "first byte timeout" in body["message"]
    assert [a["deployment"] for a in body["attempts"]] == ["a", "b"]
    assert set(body) >= {"message", "type", "param", "code"}


def test_all_rate_limited_is_429_with_retry_after() -> None:
    error = AllAttemptsFailed([FailedAttempt("a", UpstreamStatusError(429, "slow down", retry_after=2.0))])
    assert error.http_status == 429
    assert (b"retry-after", b"2") in error.headers()


def test_client_fault_from_upstream_keeps_status_and_param() -> None:
    error = AllAttemptsFailed([FailedAttempt("a", UpstreamStatusError(400, "bad", param="stop"))])
    assert error.http_status == 400 and error.param == "stop"
    connect = AllAttemptsFailed([FailedAttempt("a", UpstreamConnectError("refused"))])
    assert connect.http_status == 502
    assert AllAttemptsFailed([]).http_status == 503


def test_message_from_upstream_body_shapes() -> None:
    assert message_from_upstream_body(b'{"error":{"message":"m","code":"c","param":"p"}}', "f") == ("m", "c", "p")
    assert message_from_upstream_body(b'{"error":"plain"}', "f") == ("plain", None, None)
    assert message_from_upstream_body(b"<html>bad gateway</html>", "f")[0] == "<html>bad gateway</html>"
    assert message_from_upstream_body(b"", "fallback")[0] == "fallback"
