"""Usage records in a real Redis, the embedded Redis across restarts, and the spool when Redis is down."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from tests.conftest import GatewayFactory, upstream_provider
from tests.fakes.openai_upstream import FakeOpenAI
from tests.servers import Gateway, RedisServer, free_port, start_gateway

USER = [{"role": "user", "content": "count me"}]


def events(client: redis.Redis, tenant: str = "acme") -> list[dict]:
    return [orjson.loads(fields[b"event"]) for _, fields in client.xrange(f"sy:{{{tenant}}}:usage")]


def wait_for_events(client: redis.Redis, count: int, tenant: str = "acme", timeout: float = 8) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = events(client, tenant)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    return events(client, tenant)


def test_one_usage_record_per_request(gateway_factory: GatewayFactory, upstream: FakeOpenAI, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.delete("sy:{acme}:usage")
    gateway = gateway_factory(
        providers={"fake": upstream_provider(upstream)},
        models={
            "chat": {
                "deployments": [
                    {"provider": "fake", "model": "gpt-fake+status-500"},
                    {"provider": "fake", "model": "gpt-fake"},
                ]
            }
        },
    )
    sdk = gateway.openai()
    reply = sdk.chat.completions.create(model="chat", messages=USER)
    streamed = list(sdk.chat.completions.create(model="chat", messages=USER, stream=True))
    assert streamed and all(c.usage is None for c in streamed)
    found = wait_for_events(client, 2)
    assert len(found) == 2
    plain, stream = found
    assert reply.usage is not None
    assert (plain["tenant"], plain["team"], plain["key_id"]) == ("acme", "search", "acme-key")
    assert (plain["model"], plain["deployment"], plain["attempts"], plain["status"]) == (
        "chat",
        "fake/gpt-fake",
        2,
        200,
    )
    assert (plain["prompt_tokens"], plain["completion_tokens"]) == (
        reply.usage.prompt_tokens,
        reply.usage.completion_tokens,
    )
    assert stream["stream"] is True and stream["completion_tokens"] > 0, "usage forced upstream, stripped from client"
    assert stream["ttft_ms"] is not None and stream["latency_ms"] >= stream["ttft_ms"]
    client.close()


def _embedded_gateway_with_one_event(gateway_factory: GatewayFactory) -> tuple[Gateway, Path, list[dict]]:
    """A gateway on its embedded Redis that has served one request: it, the Redis socket, the event."""
    gateway = gateway_factory(
        embedded_redis=True,
        providers={"mock": {"kind": "mock"}},
        models={"mock": {"deployments": [{"provider": "mock"}]}},
    )
    gateway.openai().chat.completions.create(model="mock", messages=USER)
    socket_path = Path(yaml_data_dir(gateway.config_path)) / "redis" / "redis.sock"
    with redis.Redis(unix_socket_path=str(socket_path)) as client:
        first = wait_for_events(client, 1)
    assert len(first) == 1
    return gateway, socket_path, first


def test_embedded_redis_persists_across_restarts(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gateway, socket_path, first = _embedded_gateway_with_one_event(gateway_factory)
    assert gateway.stop() == 0
    assert not socket_path.exists() or not _answers(socket_path), "the gateway stops the Redis it started"
    again = start_gateway(gateway.config_path, tmp_path / "restart.log")
    try:
        again.openai().chat.completions.create(model="mock", messages=USER)
        with redis.Redis(unix_socket_path=str(socket_path)) as client:
            both = wait_for_events(client, 2)
        assert [e["request_id"] for e in both][:1] == [first[0]["request_id"]]
        assert len(both) == 2
    finally:
        again.stop()


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux's")
def test_a_killed_gateway_leaves_no_embedded_redis_behind(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gateway, socket_path, first = _embedded_gateway_with_one_event(gateway_factory)
    with redis.Redis(unix_socket_path=str(socket_path)) as client:
        redis_pid = int(client.info("server")["process_id"])
    gateway.process.kill()  # SIGKILL: no shutdown code runs in the gateway
    gateway.process.wait(5)
    deadline = time.monotonic() + 10
    while _alive(redis_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(redis_pid), "the embedded redis-server outlived the gateway that started it"
    again = start_gateway(gateway.config_path, tmp_path / "restart.log")
    try:  # it shut down cleanly: what it held is still there for the next start
        with redis.Redis(unix_socket_path=str(socket_path)) as client:
            assert [e["request_id"] for e in events(client)] == [first[0]["request_id"]]
            assert int(client.info("server")["process_id"]) != redis_pid
    finally:
        again.stop()


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone: it no longer serves anything)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_usage_spooled_while_redis_is_down_then_replayed(
    gateway_factory: GatewayFactory, upstream: FakeOpenAI, tmp_path: Path
) -> None:
    port = free_port()
    gateway = gateway_factory(
        redis_url=f"redis://127.0.0.1:{port}/0",
        wait_path="/healthz",
        providers={"fake": upstream_provider(upstream)},
        models={"chat": {"deployments": [{"provider": "fake", "model": "gpt-fake"}]}},
    )
    assert httpx.get(f"{gateway.url}/readyz").status_code == 503, "not ready without its store"
    ids = [
        gateway.openai().chat.completions.with_raw_response.create(model="chat", messages=USER).headers["x-request-id"]
        for _ in range(3)
    ]
    spool = Path(yaml_data_dir(gateway.config_path)) / "spool"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sum(len(p.read_bytes().splitlines()) for p in spool.glob("usage-*")) < 3:
        time.sleep(0.1)
    assert sum(len(p.read_bytes().splitlines()) for p in spool.glob("usage-*")) == 3
    server = RedisServer(tmp_path / "late-redis", port=port)
    server.start_on(port)
    try:
        with redis.Redis(port=port) as client:
            found = wait_for_events(client, 3, timeout=15)
            assert sorted(e["request_id"] for e in found) == sorted(ids)
        assert list(spool.glob("usage-*")) == []
        assert httpx.get(f"{gateway.url}/readyz").status_code == 200
    finally:
        gateway.stop()
        server.stop()


def yaml_data_dir(config_path: Path) -> str:
    import yaml

    return yaml.safe_load(config_path.read_text())["server"]["data_dir"]


def _answers(socket_path: Path) -> bool:
    try:
        with redis.Redis(unix_socket_path=str(socket_path), socket_timeout=0.5) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False
