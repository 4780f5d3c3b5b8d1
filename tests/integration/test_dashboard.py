"""The web dashboard in a real browser (Debian's headless Chromium, driven by Playwright): charts and
tables from real traffic through the gateway, tenant isolation, the export buttons, and the page's
HTTP contract (content types, caching, no secret in the HTML)."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai.types.chat import ChatCompletionMessageParam
from playwright.sync_api import Browser, Page

from tests.browser_support import PageLog, chromium, screenshot
from tests.conftest import GatewayFactory
from tests.servers import ADMIN_KEY, OTHER_KEY, TENANT_KEY, Gateway

DEPLOYMENTS = {"mock-small", "mock-large-a", "mock-large-b"}
TRAFFIC = ((TENANT_KEY, "small", 4), (TENANT_KEY, "large", 2), (OTHER_KEY, "small", 3))
WAIT_MS = 10_000


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: GatewayFactory) -> Gateway:
    """acme (TENANT_KEY) and globex (OTHER_KEY) traffic on priced mock deployments, in a Redis of its
    own (embedded), so the admin view holds exactly these requests."""
    mock = {"provider": "mock", "model": "mock"}
    gateway = module_gateway_factory(
        embedded_redis=True,
        providers={"mock": {"kind": "mock", "chunk_delay_ms": 0}},
        models={
            "small": {"deployments": [{**mock, "name": "mock-small", "price": {"input": 2, "output": 8}}]},
            "large": {
                "policy": "spread",
                "deployments": [
                    {**mock, "name": "mock-large-a", "price": {"input": 5, "output": 20}},
                    {**mock, "name": "mock-large-b", "price": {"input": 5, "output": 20}},
                ],
            },
        },
        policies={"spread": {"strategy": "weighted"}},
        tenants={
            "acme": {"budget": "1/month", "teams": {"search": {"budget": "0.5/day"}}},
            "globex": {"budget": "0.5/month"},
        },
    )
    for key, model, count in TRAFFIC:
        client = gateway.openai(key)
        for i in range(count):
            messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": f"dashboard {model} {i}"}]
            if i % 2:
                for _ in client.chat.completions.create(model=model, messages=messages, stream=True):
                    pass
            else:
                client.chat.completions.create(model=model, messages=messages)
    admin = gateway.http(headers={"authorization": f"Bearer {ADMIN_KEY}"})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        settled = admin.get("/admin/v1/costs").json()["totals"]["requests"] == 9
        spent = {b["tenant"] for b in admin.get("/admin/v1/budgets").json()["data"] if b["spend_usd"] > 0}
        if settled and spent == {"acme", "globex"}:
            return gateway
        time.sleep(0.1)
    raise AssertionError("the ledger did not settle the 9 requests within 15 s")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def api(gateway: Gateway, key: str, path: str, **params: str) -> Any:
    response = gateway.http(headers={"authorization": f"Bearer {key}"}).get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def sign_in(page: Page, gateway: Gateway, key: str) -> PageLog:
    log = PageLog().watch(page)
    page.goto(f"{gateway.url}/dashboard")
    page.wait_for_selector("body[data-state=login]")
    page.fill("#key", key)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("body[data-state=ready]")
    return log


def column(page: Page, table: str, index: int) -> list[str]:
    return [text.strip() for text in page.locator(f"#{table} tbody tr td:nth-child({index})").all_inner_texts()]


def chart_data(page: Page, canvas: str) -> tuple[list[str], dict[str, list[float | None]]]:
    """The labels of the Chart.js chart on the canvas, and each dataset's values by its label."""
    labels, datasets = page.evaluate(
        """(id) => {
            const chart = window.Chart.getChart(document.getElementById(id));
            return [chart.data.labels, Object.fromEntries(chart.data.datasets.map((d) => [d.label, d.data]))];
        }""",
        canvas,
    )
    return labels, datasets


def chart_sums(page: Page, canvas: str) -> dict[str, float]:
    return {label: sum(v or 0 for v in values) for label, values in chart_data(page, canvas)[1].items()}


def test_admin_sees_every_tenant_with_the_totals_of_the_costs_api(page: Page, gateway: Gateway) -> None:
    log = sign_in(page, gateway, ADMIN_KEY)
    costs = api(gateway, ADMIN_KEY, "/admin/v1/costs")
    assert page.inner_text("#whoami") == "admin key"
    assert page.inner_text("#total-cost") == f"${costs['totals']['cost_usd']}"
    assert page.inner_text("#total-requests") == "9"
    assert set(column(page, "table-groups", 1)) == {"acme", "globex"}

    spend = chart_sums(page, "chart-spend")
    by_tenant = api(gateway, ADMIN_KEY, "/admin/v1/costs", group_by="tenant", bucket="none")["rows"]
    assert spend == pytest.approx({row["tenant"]: row["cost_micro_usd"] / 1e6 for row in by_tenant})
    by_model = api(gateway, ADMIN_KEY, "/admin/v1/costs", group_by="model", bucket="none")["rows"]
    assert dict(zip(column(page, "table-models", 1), column(page, "table-models", 4), strict=True)) == {
        row["model"]: row["cost_usd"] for row in by_model
    }
    assert chart_sums(page, "chart-models")["cost USD"] == pytest.approx(costs["totals"]["cost_micro_usd"] / 1e6)
    assert set(zip(column(page, "table-keys", 1), column(page, "table-keys", 2), strict=True)) >= {("acme", "acme-key")}
    assert set(column(page, "table-keys", 1)) == {"acme", "globex"}

    assert set(column(page, "table-deployments", 2)) == DEPLOYMENTS
    assert set(column(page, "table-deployments", 4)) == {"closed"}
    served = dict(zip(column(page, "table-deployments", 2), column(page, "table-deployments", 11), strict=True))
    assert int(served["mock-small"]) == 7 and int(served["mock-large-a"]) + int(served["mock-large-b"]) == 2
    assert chart_sums(page, "chart-traffic")["requests"] == 9
    labels, latency = chart_data(page, "chart-latency")
    health = {d["deployment"]: d["latency"] for d in api(gateway, ADMIN_KEY, "/admin/v1/deployments")["data"]}
    assert set(labels) == DEPLOYMENTS
    for name, ewma in zip(labels, latency["EWMA ms"], strict=True):
        seconds = health[name]["ewma_latency_s"]
        assert ewma == (None if seconds is None else pytest.approx(seconds * 1000))

    scopes = set(zip(column(page, "table-budgets", 1), column(page, "table-budgets", 2), strict=True))
    assert scopes == {("acme", "tenant"), ("acme", "team:search"), ("globex", "tenant")}
    burn = chart_sums(page, "chart-budget")
    assert set(burn) == {"remaining", "projected", "exhausted"} and burn["remaining"] != 0
    assert page.is_visible("#admin") and not page.is_visible("#login")
    shot = screenshot(page, "dashboard-admin")
    assert shot.stat().st_size > 10_000
    assert log.errors == []


def test_tenant_key_sees_only_its_tenant_and_no_admin_panel(page: Page, gateway: Gateway) -> None:
    log = sign_in(page, gateway, TENANT_KEY)
    usage = api(gateway, TENANT_KEY, "/v1/usage")
    assert page.inner_text("#whoami") == "tenant acme"
    assert page.inner_text("#total-cost") == f"${usage['totals']['cost_usd']}"
    assert page.inner_text("#total-requests") == "6"
    assert page.is_hidden("#admin")
    assert set(column(page, "table-models", 1)) == {"small", "large"}
    assert set(column(page, "table-keys", 1)) == {"acme"}
    assert set(column(page, "table-budgets", 1)) == {"acme"}
    page.select_option("#split", "tenant")
    assert set(column(page, "table-groups", 1)) == {"acme"}
    assert set(chart_sums(page, "chart-spend")) == {"acme"}
    html = page.content()
    assert "globex" not in html and not DEPLOYMENTS & set(re.findall(r"mock-[a-z-]+", html))

    admin_calls = [r for r in log.requests if "/admin/" in r]
    assert admin_calls == [f"GET {gateway.url}/admin/v1/deployments"]  # the one probe, refused with 403
    assert all("403" in error for error in log.errors), log.errors
    with page.expect_download() as download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert {row["tenant"] for row in rows} == {"acme"} and sum(int(row["requests"]) for row in rows) == 6
    screenshot(page, "dashboard-tenant")


def test_export_buttons_download_csv_and_focus_with_the_key(page: Page, gateway: Gateway) -> None:
    sign_in(page, gateway, ADMIN_KEY)
    totals = api(gateway, ADMIN_KEY, "/admin/v1/costs")["totals"]
    with (
        page.expect_request(lambda r: "format=csv" in r.url) as sent,
        page.expect_download() as download,
    ):
        page.click("#export-csv")
    assert sent.value.url.startswith(f"{gateway.url}/admin/v1/costs?")
    assert sent.value.headers["authorization"] == f"Bearer {ADMIN_KEY}"
    assert re.fullmatch(r"switchyard-costs-\d{4}-\d\d-\d\d-to-[0-9TZ-]+\.csv", download.value.suggested_filename)
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert {row["tenant"] for row in rows} == {"acme", "globex"}
    assert {row["model"] for row in rows} == {"small", "large"}
    assert sum(int(row["cost_micro_usd"]) for row in rows) == totals["cost_micro_usd"]

    with page.expect_download() as download:
        page.click("#export-focus")
    assert download.value.suggested_filename.startswith("switchyard-focus-")
    focus = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert sum(Decimal(row["BilledCost"]) for row in focus) == Decimal(totals["cost_usd"])
    assert {row["SubAccountName"] for row in focus} == {"acme", "globex"}
    page.wait_for_selector("body[data-download^=switchyard-focus-]")


def test_a_wrong_key_is_refused_and_sign_out_forgets_the_key(page: Page, gateway: Gateway) -> None:
    page.goto(f"{gateway.url}/dashboard")
    page.fill("#key", "sk-not-a-key")
    page.click("#login-form button[type=submit]")
    page.locator("#login-error", has_text="rejected").wait_for()
    assert page.evaluate("sessionStorage.length") == 0 and page.is_hidden("#app")

    page.fill("#key", ADMIN_KEY)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("body[data-state=ready]")
    page.reload()  # the tab keeps the key: no second sign-in
    page.wait_for_selector("body[data-state=ready]")
    assert page.is_visible("#admin")
    page.click("#logout")
    page.wait_for_selector("body[data-state=login]")
    assert page.evaluate("sessionStorage.length") == 0
    assert page.locator("table tr").count() == 0 and page.inner_text("#total-cost") == "\N{EN DASH}"


def test_page_and_assets_have_their_content_types_and_cache_headers(gateway: Gateway) -> None:
    http = gateway.http()
    page = http.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert not any(secret in page.text for secret in (ADMIN_KEY, TENANT_KEY, OTHER_KEY, "acme", "globex"))
    assert http.get("/dashboard", headers={"if-none-match": page.headers["etag"]}).status_code == 304

    links = dict(re.findall(r'"/dashboard/static/([\w.]+)\?v=([0-9a-f]{16})"', page.text))
    assert set(links) == {"dashboard.css", "chart.umd.min.js", "dashboard.js"}
    script = http.get(f"/dashboard/static/dashboard.js?v={links['dashboard.js']}")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
    module = http.get("/dashboard/static/report.js")  # imported by dashboard.js without a version
    assert module.status_code == 200 and module.headers["cache-control"] == "no-cache"
    assert http.get("/dashboard/static/report.js", headers={"if-none-match": module.headers["etag"]}).status_code == 304
    style = http.get(f"/dashboard/static/dashboard.css?v={links['dashboard.css']}")
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    chart = http.get(f"/dashboard/static/chart.umd.min.js?v={links['chart.umd.min.js']}")
    assert chart.text.startswith("/*!\n * Chart.js v4.6.1")
    assert "MIT License" in http.get("/dashboard/static/chart.js.LICENSE.md").text

    missing = http.get("/dashboard/static/nothing.js")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_route"
    assert http.get("/dashboard/static/..%2Fapp.py").status_code == 404
    assert http.post("/dashboard").status_code == 405
    assert httpx.get(f"{gateway.url}/dashboard/", follow_redirects=True).status_code == 200
