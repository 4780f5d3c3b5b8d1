"""Finance reports from real traffic: totals equal the events, tenant isolation, exports, bad input."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import redis

from tests.conftest import GatewayFactory
from tests.integration.ledger_support import unique, wait_events
from tests.servers import ADMIN_KEY, ROOT, Gateway

ALPHA_KEY, BETA_KEY = "sk-report-alpha-key", "sk-report-beta-key"
PRICE = {"input": 2.0, "output": 8.0}


@pytest.fixture(scope="module")
def tenants() -> tuple[str, str]:
    return unique("alpha"), unique("beta")


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: GatewayFactory, tenants: tuple[str, str], redis_url: str) -> Gateway:
    alpha, beta = tenants
    gateway = module_gateway_factory(
        auth={
            "admin_key": ADMIN_KEY,
            "keys": [
                {"key": ALPHA_KEY, "tenant": alpha, "team": "search", "name": "alpha-key"},
                {"key": BETA_KEY, "tenant": beta, "team": "ads", "name": "beta-key"},
            ],
        },
        providers={"mock": {"kind": "mock", "chunk_delay_ms": 0}},
        models={
            "small": {"deployments": [{"provider": "mock", "model": "mock", "price": PRICE}]},
            "large": {"deployments": [{"provider": "mock", "model": "mock", "name": "big", "price": {"input": 5, "output": 20}}]},
        },
    )  # fmt: skip
    for key, model, tag, count in (
        (ALPHA_KEY, "small", "search", 4),
        (ALPHA_KEY, "large", "chat", 2),
        (BETA_KEY, "small", "ads", 3),
    ):
        with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {key}"}, timeout=20) as http:
            for i in range(count):
                response = http.post(
                    "/v1/chat/completions",
                    json={
                        "model": model,
                        "messages": [{"role": "user", "content": f"report {i}"}],
                        "stream": i % 2 == 1,
                    },
                    headers={"x-switchyard-tags": f"feature={tag}"},
                )
                assert response.status_code == 200
    store = redis.Redis.from_url(redis_url)
    wait_events(store, alpha, 6)
    wait_events(store, beta, 3)
    store.close()
    return gateway


def admin(gateway: Gateway) -> httpx.Client:
    return gateway.http(headers={"authorization": f"Bearer {ADMIN_KEY}"})


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def tomorrow() -> str:
    return (datetime.now(UTC).date() + timedelta(days=1)).isoformat()


def test_totals_equal_the_sum_of_the_events(gateway: Gateway, tenants: tuple[str, str], redis_url: str) -> None:
    store = redis.Redis.from_url(redis_url)
    from tests.integration.ledger_support import events

    expected = [e for t in tenants for e in events(store, t)]
    store.close()
    report = (
        admin(gateway)
        .get(
            "/admin/v1/costs",
            params={
                "since": today(),
                "until": tomorrow(),
                "group_by": "tenant,team,model",
                "tenant": ",".join(tenants),
            },
        )
        .json()
    )
    assert report["totals"]["requests"] == len(expected) == 9
    assert report["totals"]["cost_micro_usd"] == sum(e["cost_micro_usd"] for e in expected) > 0
    assert report["totals"]["prompt_tokens"] == sum(e["prompt_tokens"] for e in expected)
    assert sum(row["cost_micro_usd"] for row in report["rows"]) == report["totals"]["cost_micro_usd"]
    groups = {(r["tenant"], r["team"], r["model"]): r["requests"] for r in report["rows"]}
    alpha, beta = tenants
    assert groups == {(alpha, "search", "small"): 4, (alpha, "search", "large"): 2, (beta, "ads", "small"): 3}
    by_tag = (
        admin(gateway)
        .get("/admin/v1/costs", params={"since": today(), "group_by": "tag:feature", "bucket": "none", "tenant": alpha})
        .json()
    )
    assert {r["tag:feature"]: r["requests"] for r in by_tag["rows"]} == {"search": 4, "chat": 2}


def test_archive_and_stream_together_count_each_event_once(gateway: Gateway, tenants: tuple[str, str]) -> None:
    ledger = gateway.config_path.parent / "data0" / "ledger"

    def archived_lines() -> int:
        # Every gateway on a Redis archives every tenant's stream (the consumer group shares the work), so
        # in the shared test Redis the first rounds may spend a while on other tests' tenants.
        return sum(f.read_text().count(f'"tenant":"{tenants[0]}"') for f in ledger.rglob("*.jsonl"))

    deadline = time.monotonic() + 40
    while archived_lines() < 6 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert archived_lines() == 6, "the archive wrote each of the tenant's events once"
    report = admin(gateway).get("/admin/v1/costs", params={"since": today(), "tenant": tenants[0]}).json()
    assert report["totals"]["requests"] == 6  # archived and still in the stream: counted once


def test_csv_and_focus_exports_add_up(gateway: Gateway, tenants: tuple[str, str]) -> None:
    params = {"since": today(), "until": tomorrow(), "tenant": ",".join(tenants)}
    total = admin(gateway).get("/admin/v1/costs", params=params).json()["totals"]["cost_usd"]
    exported = admin(gateway).get("/admin/v1/costs", params={**params, "format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sum(Decimal(r["cost_usd"]) for r in rows) == Decimal(total)
    focus = admin(gateway).get("/admin/v1/costs", params={**params, "format": "focus"})
    focus_rows = list(csv.DictReader(io.StringIO(focus.text)))
    assert {"BilledCost", "EffectiveCost", "ListCost", "ChargePeriodStart", "ChargePeriodEnd", "ServiceName",
            "ResourceId", "SubAccountId", "Tags", "ConsumedQuantity", "ConsumedUnit"} <= set(focus_rows[0])  # fmt: skip
    assert sum(Decimal(r["BilledCost"]) for r in focus_rows) == Decimal(total)
    assert {r["SubAccountId"] for r in focus_rows} == set(tenants)


def test_a_tenant_key_sees_only_its_own_tenant(gateway: Gateway, tenants: tuple[str, str]) -> None:
    alpha, beta = tenants
    own = gateway.http(headers={"authorization": f"Bearer {BETA_KEY}"})
    report = own.get("/v1/usage", params={"since": today(), "group_by": "tenant"}).json()
    assert [r["tenant"] for r in report["rows"]] == [beta] and report["totals"]["requests"] == 3
    forbidden = own.get("/v1/usage", params={"tenant": alpha})
    assert forbidden.status_code == 403
    assert own.get("/admin/v1/costs").status_code == 403
    assert gateway.http().get("/v1/usage").status_code == 401


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"group_by": "tenant,colour"}, "group_by"),
        ({"bucket": "fortnight"}, "bucket"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-12-02", "until": "2026-12-01"}, "since"),
        ({"format": "xlsx"}, "format"),
        ({"tenants": "x"}, "tenants"),
    ],
)
def test_bad_report_queries_are_400_naming_the_parameter(gateway: Gateway, params: dict, param: str) -> None:
    response = admin(gateway).get("/admin/v1/costs", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_cli_report_prints_a_table_and_csv(gateway: Gateway, tenants: tuple[str, str]) -> None:
    env = {"SWITCHYARD_URL": gateway.url, "SWITCHYARD_ADMIN_KEY": ADMIN_KEY, "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    base = [sys.executable, "-m", "gateway", "costs", "report", "--since", today(), "--tenant", ",".join(tenants)]
    table = subprocess.run(
        [*base, "--group-by", "tenant,model"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert table.returncode == 0, table.stderr
    assert "TOTAL" in table.stdout and tenants[0] in table.stdout
    as_csv = subprocess.run([*base, "--format", "csv"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert as_csv.returncode == 0 and as_csv.stdout.startswith("tenant,model,")
    bad = subprocess.run([*base, "--bucket", "weekly"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "bucket" in bad.stderr
