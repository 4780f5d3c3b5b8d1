"""A request's accounting runs after its response, while the next upstream request waits, or within
`MAX_DELAY`; reads of the figures and shutdown see all of it. The app in process (ASGI), with the fake
OpenAI upstream over a socket and a real Redis."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.app import SwitchyardApp, create_app
from gateway.config.loader import parse_config
from gateway.settings import Settings
from providers import idle_work as idle_work_module
from providers.idle_work import idle_work
from tests.fakes.openai_upstream import FakeOpenAI
from tests.servers import TENANT_KEY, UPSTREAM_KEY

CHAT = {"messages": [{"role": "user", "content": "count me"}]}


def make_app(
    tmp_path: Path, redis_url: str, upstream: FakeOpenAI, exporter: InMemorySpanExporter | None = None
) -> SwitchyardApp:
    text = f"""
server: {{data_dir: "{tmp_path / "data"}", request_log: false}}
store: {{redis_url: "{redis_url}"}}
auth: {{keys: [{{key: {TENANT_KEY}, tenant: acme}}]}}
providers:
  fake: {{kind: openai, base_url: "{upstream.base_url}", api_key: {UPSTREAM_KEY}}}
  mock: {{kind: mock, chunk_delay_ms: 0}}
models:
  chat: {{deployments: [{{provider: fake, model: gpt-4o-mini}}]}}
  local: {{deployments: [{{provider: mock, model: mock}}]}}
ledger: {{archive: false}}
"""
    config = parse_config(text, {})
    return create_app(Settings(config_path=tmp_path / "unused.yaml"), config, span_exporter=exporter)


def served(app: SwitchyardApp, model: str) -> int:
    """`switchyard_requests_total` for `model`, read from the registry (not through /metrics, which runs
    the deferred work first)."""
    text = app.runtime.metrics.exposition().decode()
    found = re.findall(rf'^switchyard_requests_total{{[^}}]*model="{model}"[^}}]*}} (\S+)$', text, re.M)
    return int(sum(float(n) for n in found))


def client(app: SwitchyardApp) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {TENANT_KEY}"}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", headers=headers)


async def test_accounting_runs_once_the_next_request_is_upstream(
    tmp_path: Path, redis_url: str, fresh_upstream: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idle_work_module, "MAX_DELAY", 60.0)  # the timer cannot be what runs it here
    app = make_app(tmp_path, redis_url, fresh_upstream)
    async with app.runtime.lifespan(), client(app) as http:
        idle_work.run()
        first = await http.post("/v1/chat/completions", json={"model": "chat", **CHAT})
        assert first.status_code == 200
        assert idle_work.pending == 1 and served(app, "chat") == 0  # answered, not yet accounted
        second = await http.post("/v1/chat/completions", json={"model": "chat", "stream": True, **CHAT})
        assert second.status_code == 200 and "[DONE]" in second.text
        # The second request's upstream write ran the first one's accounting; its own waits.
        assert served(app, "chat") == 1 and idle_work.pending == 1
        metrics = await http.get("/metrics")  # a read of the figures runs what is pending first
        assert re.search(r'^switchyard_requests_total{[^}]*model="chat"[^}]*} 2\.0$', metrics.text, re.M)
        assert idle_work.pending == 0
        third = await http.post("/v1/chat/completions", json={"model": "chat", **CHAT})
        assert third.status_code == 200 and idle_work.pending == 1
    assert idle_work.pending == 0 and served(app, "chat") == 3  # shutdown ran the last one


async def test_without_an_upstream_request_the_timer_runs_it(
    tmp_path: Path, redis_url: str, fresh_upstream: FakeOpenAI
) -> None:
    app = make_app(tmp_path, redis_url, fresh_upstream)
    async with app.runtime.lifespan(), client(app) as http:
        response = await http.post("/v1/chat/completions", json={"model": "local", **CHAT})
        assert response.status_code == 200
        deadline = time.monotonic() + 2
        while served(app, "local") == 0 and time.monotonic() < deadline:
            await asyncio.sleep(idle_work_module.MAX_DELAY)
        assert served(app, "local") == 1 and idle_work.pending == 0


async def test_the_span_and_the_latency_end_with_the_response(
    tmp_path: Path, redis_url: str, fresh_upstream: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idle_work_module, "MAX_DELAY", 60.0)
    exporter = InMemorySpanExporter()
    app = make_app(tmp_path, redis_url, fresh_upstream, exporter)
    async with app.runtime.lifespan(), client(app) as http:
        response = await http.post("/v1/chat/completions", json={"model": "chat", **CHAT})
        answered = time.time_ns()
        assert response.status_code == 200 and idle_work.pending == 1
        await asyncio.sleep(1.0)
        idle_work.run()  # accounted 1 s after the response
    spans = {span.name: span for span in exporter.get_finished_spans()}
    request = spans["chat chat"]
    assert request.end_time is not None and request.end_time <= answered
    text = app.runtime.metrics.exposition().decode()
    # The latency histogram's sum: the request's time, not the 1 s it waited to be accounted.
    total = re.search(r'^switchyard_request_duration_seconds_sum{[^}]*model="chat"[^}]*} (\S+)$', text, re.M)
    assert total is not None and 0 < float(total.group(1)) < 1.0
