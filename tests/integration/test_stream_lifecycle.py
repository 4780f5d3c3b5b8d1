"""Client disconnects, SIGTERM drain: what happens to streams in flight."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import openai
import pytest
import redis

from tests.conftest import GatewayFactory, upstream_provider
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.ledger_support import wait_events
from tests.servers import TENANT_KEY

AUTH = {"Authorization": f"Bearer {TENANT_KEY}"}
SLOW = {"provider": "fake", "model": "gpt-fake+words-60+slow-50"}  # ~3 s stream


def test_client_disconnect_cancels_upstream_stream(gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> None:
    gateway = gateway_factory(providers={"fake": upstream_provider(upstream)}, models={"slow": {"deployments": [SLOW]}})
    cancelled_before = upstream.cancelled_streams
    with (
        httpx.Client(base_url=gateway.url, timeout=10) as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            headers=AUTH,
            json={"model": "slow", "stream": True, "messages": [{"role": "user", "content": "x"}]},
        ) as response,
    ):
        lines = response.iter_lines()
        events = [line for _, line in zip(range(6), lines, strict=False)]
        assert any(e.startswith("data: {") for e in events)
        assert upstream.open_streams >= 1
    closed_at = time.monotonic()
    assert upstream.wait_streams_closed(timeout=2.0)
    assert time.monotonic() - closed_at < 1.0, "upstream stream must be cancelled within a second"
    assert upstream.cancelled_streams == cancelled_before + 1


def test_sigterm_drains_in_flight_stream_and_refuses_new_requests(
    gateway_factory: GatewayFactory, upstream: FakeOpenAI
) -> None:
    gateway = gateway_factory(
        providers={"fake": upstream_provider(upstream)},
        models={"slow": {"deployments": [SLOW]}, "fast": {"deployments": [{"provider": "fake", "model": "gpt-fake"}]}},
    )
    client = gateway.openai()
    result: dict[str, object] = {}

    def consume() -> None:
        try:
            stream = client.chat.completions.create(
                model="slow", messages=[{"role": "user", "content": "x"}], stream=True
            )
            result["text"] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        except Exception as exc:
            result["error"] = exc

    thread = threading.Thread(target=consume)
    thread.start()
    deadline = time.monotonic() + 5
    while upstream.open_streams == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    gateway.signal(signal.SIGTERM)
    time.sleep(0.3)
    with httpx.Client(base_url=gateway.url, timeout=5) as http:
        assert http.get("/readyz").status_code == 503
        refused = http.post(
            "/v1/chat/completions", headers=AUTH, json={"model": "fast", "messages": [{"role": "user", "content": "x"}]}
        )
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "draining"
    with pytest.raises(openai.APIStatusError) as info:  # the SDK sees the same 503
        gateway.openai().chat.completions.create(model="fast", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 503
    thread.join(15)
    assert "error" not in result, result.get("error")
    assert str(result["text"]).startswith("w1 w2")
    assert gateway.process.wait(15) == 0


@pytest.mark.parametrize(
    "model",
    [
        # (events 20 ms apart: the first is relayed before the rest arrive)
        "gpt-fake+slow-20",  # `[DONE]` and the end of the body in one write: relayed with the end of ours
        # The upstream's body ends 1.5 s after `[DONE]`: neither `[DONE]` nor the end of ours waits for it.
        "gpt-fake+slow-20+late-end-1500",
        # ... or breaks off 1.5 s after `[DONE]`: the client was served in full all the same.
        "gpt-fake+slow-20+late-end-1500+drop-after-999",
    ],
)
def test_a_stream_ends_once_and_cleanly_however_the_upstream_ends(
    gateway_factory: GatewayFactory, upstream: FakeOpenAI, redis_url: str, model: str
) -> None:
    store = redis.Redis.from_url(redis_url)
    store.delete("sy:{acme}:usage")
    gateway = gateway_factory(
        providers={"fake": upstream_provider(upstream)},
        models={"chat": {"deployments": [{"provider": "fake", "model": model}]}},
    )
    request = {"model": "chat", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    assert upstream.wait_streams_closed()
    cancelled = upstream.cancelled_streams
    with (
        httpx.Client(base_url=gateway.url, timeout=10) as http,
        http.stream("POST", "/v1/chat/completions", headers=AUTH, json=request) as response,
    ):
        body = b"".join(response.iter_raw())  # to the end of the gateway's body
        upstream_still_open = upstream.open_streams
    assert response.status_code == 200
    assert body.endswith(b"data: [DONE]\n\n") and body.count(b"[DONE]") == 1
    # With a late end, ours came first; the gateway then waited for the upstream's (so that its connection
    # can be reused) instead of cutting it.
    if "late-end" in model:
        assert upstream_still_open == 1
    assert upstream.wait_streams_closed()
    if "drop-after" not in model:
        assert upstream.cancelled_streams == cancelled
    chunks = list(
        gateway.openai().chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    recorded = wait_events(store, "acme", 2)
    # The SDK stops reading at `[DONE]`: with a late end it has left before the upstream's body ended,
    # and was still served in full, billed with the usage the upstream reported (not an estimate).
    assert [(e["status"], e["error"], e["estimated"]) for e in recorded] == [(200, None, False)] * 2
    store.close()
