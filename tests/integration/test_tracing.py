"""OpenTelemetry spans for a request and its attempts, captured with the SDK's in-memory exporter;
W3C traceparent from the client continues, and reaches the upstream."""

from __future__ import annotations

from pathlib import Path

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.app import create_app
from gateway.config.loader import parse_config
from gateway.settings import Settings
from tests.fakes.openai_upstream import FakeOpenAI
from tests.servers import TENANT_KEY, UPSTREAM_KEY

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"


def config_text(data_dir: Path, redis_url: str, upstream: FakeOpenAI) -> str:
    return f"""
server: {{data_dir: "{data_dir}", request_log: false}}
store: {{redis_url: "{redis_url}"}}
auth: {{keys: [{{key: {TENANT_KEY}, tenant: acme}}]}}
providers:
  fake: {{kind: openai, base_url: "{upstream.base_url}", api_key: {UPSTREAM_KEY}}}
models:
  chat:
    deployments:
      - {{provider: fake, model: "first+status-500"}}
      - {{provider: fake, model: gpt-4o-mini}}
ledger: {{archive: false}}
"""


async def test_spans_for_the_request_and_each_attempt(
    tmp_path: Path, redis_url: str, fresh_upstream: FakeOpenAI
) -> None:
    config = parse_config(config_text(tmp_path / "data", redis_url, fresh_upstream), {})
    exporter = InMemorySpanExporter()
    app = create_app(Settings(config_path=tmp_path / "unused.yaml"), config, span_exporter=exporter)
    async with (
        app.runtime.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client,
    ):
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "chat", "messages": [{"role": "user", "content": "trace me"}]},
            headers={
                "authorization": f"Bearer {TENANT_KEY}",
                "traceparent": f"00-{CLIENT_TRACE}-b7ad6b7169203331-01",
            },
        )
        assert response.status_code == 200
    spans = {span.name: span for span in exporter.get_finished_spans()}
    request = spans["chat chat"]
    assert format(request.context.trace_id, "032x") == CLIENT_TRACE  # the client's trace continues
    attrs = dict(request.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat" and attrs["gen_ai.request.model"] == "chat"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini" and attrs["gen_ai.usage.input_tokens"] > 0
    assert attrs["switchyard.deployment"] == "fake/gpt-4o-mini" and attrs["switchyard.attempts"] == 2
    assert attrs["switchyard.routing.strategy"] == "priority"
    failed, served = spans["attempt fake/first+status-500"], spans["attempt fake/gpt-4o-mini"]
    assert failed.parent is not None and failed.parent.span_id == request.context.span_id
    assert failed.status.status_code.name == "ERROR" and served.status.status_code.name == "UNSET"
    # Each upstream request carried its attempt span's traceparent.
    sent = [r.headers.get("traceparent", "") for r in fresh_upstream.requests]
    assert sent == [
        f"00-{CLIENT_TRACE}-{format(failed.context.span_id, '016x')}-01",
        f"00-{CLIENT_TRACE}-{format(served.context.span_id, '016x')}-01",
    ]


async def test_tracing_off_sends_no_traceparent(tmp_path: Path, redis_url: str, fresh_upstream: FakeOpenAI) -> None:
    config = parse_config(config_text(tmp_path / "data", redis_url, fresh_upstream), {})
    app = create_app(Settings(config_path=tmp_path / "unused.yaml"), config)
    async with (
        app.runtime.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client,
    ):
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "chat", "messages": [{"role": "user", "content": "x"}]},
            headers={"authorization": f"Bearer {TENANT_KEY}"},
        )
        assert response.status_code == 200
    assert app.runtime.tracing is None
    assert all("traceparent" not in r.headers for r in fresh_upstream.requests)
