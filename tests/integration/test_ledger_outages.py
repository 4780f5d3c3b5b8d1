"""Nothing billable lost when Redis fails: an outage in the middle of load, and a gateway killed with
usage still spooled. Every request's usage appears exactly once afterwards."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from policies.admission_lease import LEASE_SECONDS
from tests.conftest import GatewayFactory
from tests.integration.ledger_support import events, wait_events
from tests.servers import ADMIN_KEY, Gateway, RedisServer, free_port

KEY = "sk-outage-tenant-key"
BODY = {"model": "m", "messages": [{"role": "user", "content": "bill me"}], "max_tokens": 5}


def sections(tenant: str, budgets: bool = False) -> dict:
    tenant_config = {"budget": {"usd": 1000, "period": "month"}} if budgets else {"rate_limit": {"rpm": 100000}}
    return {
        "auth": {"admin_key": ADMIN_KEY, "keys": [{"key": KEY, "tenant": tenant}]},
        "providers": {"mock": {"kind": "mock", "chunk_delay_ms": 0}},
        "models": {"m": {"deployments": [{"provider": "mock", "model": "mock", "price": {"input": 1, "output": 1}}]}},
        "tenants": {tenant: tenant_config},
    }


def send(gateway: Gateway, count: int, stream: bool = False) -> list[str]:
    ids = []
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {KEY}"}, timeout=20) as http:
        for _ in range(count):
            response = http.post("/v1/chat/completions", json={**BODY, "stream": stream})
            assert response.status_code == 200, response.text
            ids.append(response.headers["x-request-id"])
    return ids


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", persistent=True).start()
    yield server
    server.stop()


def test_redis_outage_mid_load_loses_and_doubles_nothing(
    gateway_factory: GatewayFactory, own_redis: RedisServer
) -> None:
    tenant = "outage"
    gateway = gateway_factory(redis_url=own_redis.url, **sections(tenant))
    ids = send(gateway, 15) + send(gateway, 5, stream=True)
    client = redis.Redis.from_url(own_redis.url)
    wait_events(client, tenant, 20)
    own_redis.stop()
    # Redis is down: limits fail open by default, requests are served, their usage goes to the spool.
    ids += send(gateway, 15) + send(gateway, 5, stream=True)
    spool = Path(gateway.config_path).parent / "data0" / "spool"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sum(len(p.read_bytes().splitlines()) for p in spool.glob("usage-*")) < 20:
        time.sleep(0.1)
    assert sum(len(p.read_bytes().splitlines()) for p in spool.glob("usage-*")) == 20
    own_redis.start_on(own_redis.port)
    ids += send(gateway, 10)
    found = wait_events(client, tenant, 50, timeout=20)
    time.sleep(2.5)  # one more replay round must not add anything
    found = events(client, tenant)
    assert sorted(e["request_id"] for e in found) == sorted(ids)
    assert all(e["status"] == 200 and e["cost_micro_usd"] > 0 for e in found)
    client.close()


def test_hard_budgets_fail_closed_while_redis_is_down(gateway_factory: GatewayFactory, own_redis: RedisServer) -> None:
    gateway = gateway_factory(redis_url=own_redis.url, **sections("closed", budgets=True))
    send(gateway, 1)
    own_redis.stop()
    # The first request took a lease (room for several, reserved in Redis before the outage); past its
    # time the next request must ask Redis, and the hard budget fails closed.
    time.sleep(LEASE_SECONDS + 0.2)
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {KEY}"}, timeout=20) as http:
        response = http.post("/v1/chat/completions", json=BODY)
    assert response.status_code == 503 and response.json()["error"]["code"] == "store_unavailable"
    own_redis.start_on(own_redis.port)


def test_spool_left_by_a_killed_gateway_is_replayed_once(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    tenant = "killed"
    port = free_port()
    data_dir = str(tmp_path / "shared-data")
    config = sections(tenant)
    first = gateway_factory(
        redis_url=f"redis://127.0.0.1:{port}/0", server={"data_dir": data_dir}, wait_path="/healthz", **config
    )
    ids = send(first, 12)
    spool = Path(data_dir) / "spool"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sum(len(p.read_bytes().splitlines()) for p in spool.glob("usage-*")) < 12:
        time.sleep(0.1)
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait(10)
    server = RedisServer(tmp_path / "late-redis").start_on(port)
    try:
        second = gateway_factory(redis_url=server.url, server={"data_dir": data_dir}, **config)
        client = redis.Redis.from_url(server.url)
        wait_events(client, tenant, 12)
        ids += send(second, 3)
        found = wait_events(client, tenant, 15)
        assert sorted(e["request_id"] for e in found) == sorted(ids)
        assert list(spool.glob("usage-*")) == []
        client.close()
    finally:
        server.stop()
