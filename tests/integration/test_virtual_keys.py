"""Virtual keys through the admin API and the CLI: create, use, list, rotate, revoke on every replica."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import httpx
import openai
import pytest
import redis

from tests.conftest import GatewayFactory
from tests.integration.ledger_support import unique, wait_events
from tests.servers import ADMIN_KEY, ROOT, TENANT_KEY, Gateway

USER = [{"role": "user", "content": "hi"}]
SECTIONS = {
    "providers": {"mock": {"kind": "mock", "chunk_delay_ms": 0}},
    "models": {"m": {"deployments": [{"provider": "mock", "model": "mock"}]}},
}


def admin(gateway: Gateway) -> httpx.Client:
    return gateway.http(headers={"authorization": f"Bearer {ADMIN_KEY}"})


def create(gateway: Gateway, **body: Any) -> dict[str, Any]:
    response = admin(gateway).post("/admin/v1/keys", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def works(gateway: Gateway, key: str) -> bool:
    try:
        gateway.openai(key=key).chat.completions.create(model="m", messages=USER)
    except openai.AuthenticationError:
        return False
    return True


def eventually(check: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_created_key_bills_its_tenant_and_revocation_reaches_every_replica(
    gateway_factory: GatewayFactory, redis_url: str
) -> None:
    first, second = gateway_factory(**SECTIONS), gateway_factory(**SECTIONS)
    tenant = unique("vk")
    created = create(
        first, tenant=tenant, team="search", project="p", name="ci", budget="5/month", rate_limit={"rpm": 100}
    )
    secret = created["key"]
    assert secret.startswith("sk-sy-") and created["status"] == "active" and created["team"] == "search"
    assert created["budget"] == [{"usd": 5.0, "period": "month", "alert_at": [50, 80, 100]}]
    raw = second.openai(key=secret).chat.completions.with_raw_response.create(model="m", messages=USER)
    assert raw.headers["x-ratelimit-limit-requests"] == "100"
    store = redis.Redis.from_url(redis_url)
    (event,) = wait_events(store, tenant, 1)
    assert (event["key_id"], event["team"], event["project"]) == (created["id"], "search", "p")
    # Only the hash is stored: no Redis value holds the secret.
    for name in store.scan_iter("sy:key*"):
        kind = store.type(name)
        values = store.hvals(name) if kind == b"hash" else []
        assert all(secret.encode() not in v for v in values)
    store.close()
    listed = admin(first).get("/admin/v1/keys", params={"tenant": tenant}).json()["data"]
    assert [k["id"] for k in listed] == [created["id"]] and "key" not in listed[0]
    assert works(first, secret)  # cached on both replicas now
    revoked = admin(second).delete(f"/admin/v1/keys/{created['id']}")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert eventually(lambda: not works(first, secret), timeout=3.0)
    assert not works(second, secret)


def test_rotation_with_and_without_grace(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(**SECTIONS)
    old = create(gateway, tenant=unique("rot"))
    rotated = admin(gateway).post(f"/admin/v1/keys/{old['id']}/rotate", json={"grace": "30s"}).json()
    assert rotated["replaces"]["id"] == old["id"] and rotated["key"] != old["key"]
    assert works(gateway, rotated["key"]) and works(gateway, old["key"])  # the old secret has 30 s left
    again = admin(gateway).post(f"/admin/v1/keys/{rotated['id']}/rotate", json={}).json()
    assert works(gateway, again["key"])
    assert eventually(lambda: not works(gateway, rotated["key"]), timeout=2.0)  # no grace: stops at once


def shared(factory: GatewayFactory) -> Gateway:
    """One gateway for the module's read-mostly tests."""
    started = factory.started  # type: ignore[attr-defined]
    return started[0] if started else factory(**SECTIONS)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"team": "x"}, "tenant"),
        ({"tenant": "bad tenant name"}, "tenant"),
        ({"tenant": "t", "budget": "lots"}, "budget[0]"),
        ({"tenant": "t", "rate_limit": {"rpm": -1}}, "rate_limit.rpm"),
        ({"tenant": "t", "colour": "blue"}, "colour"),
        ({"tenant": "t", "expires_in": "soon"}, "expires_in"),
    ],
)
def test_bad_key_requests_are_400_and_write_nothing(
    module_gateway_factory: GatewayFactory, body: dict[str, Any], param: str
) -> None:
    gateway = shared(module_gateway_factory)
    before = admin(gateway).get("/admin/v1/keys").json()["data"]
    response = admin(gateway).post("/admin/v1/keys", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert admin(gateway).get("/admin/v1/keys").json()["data"] == before


def test_key_admin_needs_the_admin_key(module_gateway_factory: GatewayFactory) -> None:
    gateway = shared(module_gateway_factory)
    http = gateway.http()
    assert http.get("/admin/v1/keys").status_code == 401
    assert http.get("/admin/v1/keys", headers={"authorization": f"Bearer {TENANT_KEY}"}).status_code == 403
    assert (
        http.post("/admin/v1/keys", json={"tenant": "x"}, headers={"authorization": "Bearer nope-nope"}).status_code
        == 401
    )
    assert admin(gateway).delete("/admin/v1/keys/key_doesnotexist").status_code == 404
    malformed = admin(gateway).post("/admin/v1/keys", content=b"{oops", headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "invalid_json"


def test_cli_creates_lists_and_revokes(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(**SECTIONS)
    tenant = unique("cli")
    env = {"SWITCHYARD_URL": gateway.url, "SWITCHYARD_ADMIN_KEY": ADMIN_KEY, "PATH": "/usr/bin:/bin", "COLUMNS": "200"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "keys", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    made = cli(
        "create", "--tenant", tenant, "--team", "search", "--budget", "500/month", "--rpm", "600", "--tpm", "200000"
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.split("key:")[1].split()[0]
    key_id = made.stdout.split("id:")[1].split()[0]
    assert works(gateway, secret)
    listed = cli("list", "--tenant", tenant)
    assert listed.returncode == 0 and key_id in listed.stdout and "$500/month" in listed.stdout
    assert secret not in listed.stdout
    assert cli("revoke", key_id).returncode == 0
    assert eventually(lambda: not works(gateway, secret), timeout=2.0)
    refused = cli("create", "--tenant", "bad name")
    assert refused.returncode == 1 and "tenant" in refused.stderr
