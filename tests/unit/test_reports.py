"""Reports from plain event dicts: grouping, buckets, totals, CSV, FOCUS, query parameters."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from gateway.cost_routes import parse_report_query
from gateway.reports.aggregate import USAGE_FIELDS, build_report, usd
from gateway.reports.focus import COLUMNS, FOCUS_COLUMNS, focus_rows, to_focus_csv
from gateway.reports.render import from_json, to_csv, to_json, to_table
from providers.errors import InvalidRequest

_counter = iter(range(10**9))


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "request_id": f"r{next(_counter)}",
        "ts": ts("2026-11-03T10:15:00"),
        "tenant": "acme",
        "team": "search",
        "project": None,
        "key_id": "k1",
        "endpoint": "chat/completions",
        "model": "chat-default",
        "deployment": "openai/gpt-4o-mini",
        "provider": "openai",
        "provider_kind": "openai",
        "status": 200,
        "estimated": False,
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "cached_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "cost_micro_usd": 1000,
        "list_cost_micro_usd": 1200,
        "tags": {},
    }
    return {**base, **overrides}


def test_group_by_tenant_team_model_sums_each_group() -> None:
    events = [
        event(),
        event(cost_micro_usd=500),
        event(team="ads", cost_micro_usd=9000),
        event(tenant="globex", team=None, model="embed", cost_micro_usd=1),
    ]
    report = build_report(events, group_by="tenant,team,model", bucket="none")
    rows = to_json(report)["rows"]
    assert [(r["tenant"], r["team"], r["model"], r["cost_micro_usd"]) for r in rows] == [
        ("acme", "ads", "chat-default", 9000),
        ("acme", "search", "chat-default", 1500),
        ("globex", None, "embed", 1),
    ]
    assert rows[1]["requests"] == 2 and rows[1]["prompt_tokens"] == 200 and rows[1]["cost_usd"] == "0.001500"
    assert "period_start" not in rows[0]


def test_key_status_endpoint_provider_and_deployment_groups() -> None:
    events = [
        event(status=200),
        event(status=429, key_id="k2"),
        event(status=502, key_id="k2", deployment=None, provider=None, cost_micro_usd=0),
        event(status=503, key_id="k2", endpoint="embeddings", cost_micro_usd=0),
    ]
    rows = to_json(build_report(events, group_by=["key", "status"]))["rows"]
    assert {(r["key"], r["status"]): r["requests"] for r in rows} == {
        ("k1", "2xx"): 1,
        ("k2", "4xx"): 1,
        ("k2", "5xx"): 2,
    }
    assert {(r["key"], r["status"]): r["errors"] for r in rows}[("k2", "5xx")] == 2
    by_deployment = to_json(build_report(events, group_by="provider,deployment,endpoint"))["rows"]
    assert {(r["provider"], r["deployment"], r["endpoint"]) for r in by_deployment} == {
        ("openai", "openai/gpt-4o-mini", "chat/completions"),
        (None, None, "chat/completions"),
        ("openai", "openai/gpt-4o-mini", "embeddings"),
    }


def test_day_buckets_split_at_utc_midnight() -> None:
    events = [
        event(ts=ts("2026-11-03T23:59:59.999"), cost_micro_usd=10),
        event(ts=ts("2026-11-04T00:00:00"), cost_micro_usd=20),
        event(ts=ts("2026-11-04T23:00:00"), cost_micro_usd=30),
    ]
    rows = to_json(build_report(events, group_by="tenant", bucket="day"))["rows"]
    assert [(r["period_start"], r["period_end"], r["cost_micro_usd"]) for r in rows] == [
        ("2026-11-03T00:00:00Z", "2026-11-04T00:00:00Z", 10),
        ("2026-11-04T00:00:00Z", "2026-11-05T00:00:00Z", 50),
    ]


def test_month_and_hour_buckets_cross_year_and_month_ends() -> None:
    events = [
        event(ts=ts("2026-11-30T23:30:00")),
        event(ts=ts("2026-12-31T23:59:59")),
        event(ts=ts("2027-01-01T00:00:00")),
    ]
    months = to_json(build_report(events, bucket="month"))["rows"]
    assert [(r["period_start"], r["period_end"]) for r in months] == [
        ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"),
        ("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        ("2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"),
    ]
    hours = to_json(build_report(events[:1], bucket="hour"))["rows"]
    assert (hours[0]["period_start"], hours[0]["period_end"]) == ("2026-11-30T23:00:00Z", "2026-12-01T00:00:00Z")


def test_rows_sorted_by_period_then_cost_descending() -> None:
    events = [
        event(ts=ts("2026-11-04T01:00:00"), model="b", cost_micro_usd=5),
        event(ts=ts("2026-11-03T01:00:00"), model="a", cost_micro_usd=1),
        event(ts=ts("2026-11-03T02:00:00"), model="b", cost_micro_usd=7),
        event(ts=ts("2026-11-04T02:00:00"), model="a", cost_micro_usd=9),
    ]
    rows = to_json(build_report(events, group_by="model", bucket="day"))["rows"]
    assert [(r["period_start"][:10], r["model"]) for r in rows] == [
        ("2026-11-03", "b"),
        ("2026-11-03", "a"),
        ("2026-11-04", "a"),
        ("2026-11-04", "b"),
    ]


def test_tag_grouping_uses_empty_string_when_absent() -> None:
    events = [
        event(tags={"env": "prod", "feature": "search"}, cost_micro_usd=3),
        event(tags={"env": "prod"}, cost_micro_usd=4),
        event(tags={"env": "dev"}, cost_micro_usd=5),
        event(tags={}, cost_micro_usd=6),
    ]
    rows = to_json(build_report(events, group_by="tag:env,tag:feature"))["rows"]
    assert {(r["tag:env"], r["tag:feature"]): r["cost_micro_usd"] for r in rows} == {
        ("prod", "search"): 3,
        ("prod", ""): 4,
        ("dev", ""): 5,
        ("", ""): 6,
    }


def test_totals_and_estimated_requests() -> None:
    events = [
        event(estimated=True, reasoning_tokens=5, cached_tokens=40, cache_write_tokens=10),
        event(estimated=True, status=500),
        event(),
    ]
    totals = to_json(build_report(events, group_by="model", bucket="day"))["totals"]
    assert totals["requests"] == 3 and totals["estimated_requests"] == 2 and totals["errors"] == 1
    assert (totals["reasoning_tokens"], totals["cached_tokens"], totals["cache_write_tokens"]) == (5, 40, 10)
    assert totals["cost_micro_usd"] == 3000 and totals["cost_usd"] == "0.003000"
    assert totals["list_cost_micro_usd"] == 3600 and totals["list_cost_usd"] == "0.003600"


def test_cost_usd_is_exact() -> None:
    assert usd(0) == "0.000000"
    assert usd(1) == "0.000001"
    assert usd(123_456_789_012_345_678) == "123456789012.345678"
    assert usd(-2_500_000) == "-2.500000"


def test_unknown_group_by_or_bucket_is_invalid_request() -> None:
    with pytest.raises(InvalidRequest) as bad_group:
        build_report([], group_by="tenant,colour")
    assert bad_group.value.param == "group_by" and bad_group.value.http_status == 400
    assert "colour" in bad_group.value.message and "tenant" in bad_group.value.message
    assert "tag:<name>" in bad_group.value.message
    with pytest.raises(InvalidRequest) as empty_tag:
        build_report([], group_by="tag:")
    assert empty_tag.value.param == "group_by"
    with pytest.raises(InvalidRequest) as bad_bucket:
        build_report([], bucket="week")
    assert bad_bucket.value.param == "bucket" and "month" in bad_bucket.value.message


def test_csv_parses_back_and_sums_match() -> None:
    events = [
        event(team=None, tags={"env": 'a,b "quoted"\nnewline'}),
        event(team="=HYPERLINK(1)", cost_micro_usd=123_456),
        event(ts=ts("2026-11-05T00:00:01"), cost_micro_usd=7),
    ]
    report = build_report(events, group_by="team,tag:env", bucket="day")
    text = to_csv(report)
    assert text.endswith("\r\n")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(rows[0]) == [
        "team",
        "tag:env",
        "period_start",
        "period_end",
        *USAGE_FIELDS,
        "cost_usd",
        "list_cost_usd",
    ]
    assert len(rows) == len(report.rows)
    assert sum(int(r["cost_micro_usd"]) for r in rows) == report.totals.cost_micro_usd == 123_456 + 1000 + 7
    assert sum(int(r["requests"]) for r in rows) == 3
    assert {r["tag:env"] for r in rows} == {'a,b "quoted"\nnewline', ""}
    assert "'=HYPERLINK(1)" in {r["team"] for r in rows}  # never a live formula in a spreadsheet
    assert "" in {r["team"] for r in rows}  # null is an empty cell


def test_json_round_trip_and_table_has_total_line() -> None:
    events = [event(), event(model="embed", cost_micro_usd=2_000_000)]
    report = build_report(events, group_by="tenant,model", bucket="month")
    data = orjson.loads(orjson.dumps(to_json(report)))
    assert from_json(data) == report
    table = to_table(report)
    assert table.row_count == 3
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(table)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "TOTAL" in text and "2.001000" in text and "2026-11" in text


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "ts": st.floats(min_value=ts("2026-01-01T00:00:00"), max_value=ts("2027-12-31T23:59:59")),
                "tenant": st.sampled_from(["a", "b"]),
                "model": st.sampled_from(["m1", "m2", "m3"]),
                "status": st.sampled_from([200, 400, 500]),
                "cost_micro_usd": st.integers(min_value=0, max_value=10**12),
                "prompt_tokens": st.integers(min_value=0, max_value=10**6),
            }
        ),
        max_size=40,
    ),
    st.sampled_from(["hour", "day", "month", "none"]),
)
def test_rows_always_sum_to_totals(events: list[dict[str, Any]], bucket: str) -> None:
    report = build_report(events, group_by="tenant,model,status", bucket=bucket)
    assert report.totals.cost_micro_usd == sum(e["cost_micro_usd"] for e in events)
    assert report.totals.requests == len(events)
    for name in USAGE_FIELDS:
        assert sum(getattr(r.usage, name) for r in report.rows) == getattr(report.totals, name)
    rows = list(csv.DictReader(io.StringIO(to_csv(report), newline="")))
    assert sum(int(r["cost_micro_usd"]) for r in rows) == report.totals.cost_micro_usd
    if bucket != "none":
        focus = list(csv.DictReader(io.StringIO(to_focus_csv(events, bucket=bucket), newline="")))
        billed = sum(int(r["BilledCost"].replace(".", "")) for r in focus)
        assert billed == report.totals.cost_micro_usd


def test_focus_headers_are_the_spec_columns() -> None:
    text = to_focus_csv([event()], bucket="day")
    header = next(csv.reader(io.StringIO(text, newline="")))
    assert header == list(COLUMNS)
    assert list(FOCUS_COLUMNS) == sorted(FOCUS_COLUMNS)  # FOCUS columns first, alphabetical
    assert all(name.startswith("x_") for name in COLUMNS[len(FOCUS_COLUMNS) :])
    mandatory = {
        "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
        "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd",
        "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost",
        "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
    }  # fmt: skip
    assert mandatory <= set(header)


def test_focus_rows_values_and_cost_totals() -> None:
    events = [
        event(ts=ts("2026-11-30T23:00:00"), team="search", project="p1", tags={"env": "prod", "a": "1"}),
        event(ts=ts("2026-11-30T22:00:00"), team="search", project="p2", tags={"env": "prod", "a": "2"},
              prompt_tokens=1_000_000, completion_tokens=500_000, cost_micro_usd=1_250_000, list_cost_micro_usd=2_000_000),
        event(ts=ts("2026-12-01T00:10:00"), deployment="gpu-1/llama", provider="gpu-1", provider_kind="vllm",
              model="llama", cost_micro_usd=0, list_cost_micro_usd=0),
        event(status=502, deployment=None, provider=None, provider_kind=None, prompt_tokens=0,
              completion_tokens=0, cost_micro_usd=0, list_cost_micro_usd=0),
    ]  # fmt: skip
    rows = focus_rows(events, bucket="day")
    assert len(rows) == 2  # the failure without usage costs nothing and is left out
    nov, dec = rows
    assert nov["ChargePeriodStart"] == "2026-11-30T00:00:00Z" and nov["ChargePeriodEnd"] == "2026-12-01T00:00:00Z"
    assert nov["BillingPeriodStart"] == "2026-11-01T00:00:00Z" and nov["BillingPeriodEnd"] == "2026-12-01T00:00:00Z"
    assert dec["BillingPeriodStart"] == "2026-12-01T00:00:00Z" and dec["BillingPeriodEnd"] == "2027-01-01T00:00:00Z"
    assert (nov["BilledCost"], nov["EffectiveCost"], nov["ContractedCost"]) == ("1.251000",) * 3
    assert nov["ListCost"] == "2.001200" and nov["BillingCurrency"] == "USD"
    assert nov["ConsumedQuantity"] == "1500120" and nov["ConsumedUnit"] == "Tokens"
    assert nov["PricingQuantity"] == "1.500120" and nov["PricingUnit"] == "1000000 Tokens"
    assert (nov["ChargeCategory"], nov["ChargeClass"], nov["ChargeFrequency"]) == ("Usage", "", "Usage-Based")
    assert (nov["ServiceName"], nov["PublisherName"], nov["ProviderName"]) == ("openai", "openai", "Switchyard")
    assert nov["ServiceCategory"] == "AI and Machine Learning" and nov["ServiceSubcategory"] == "Generative AI"
    assert (nov["ResourceId"], nov["ResourceName"]) == ("openai/gpt-4o-mini", "chat-default")
    assert (nov["SubAccountId"], nov["SubAccountName"]) == ("acme", "acme")
    assert orjson.loads(nov["Tags"]) == {"env": "prod", "switchyard/team": "search"}  # only uniform tags
    assert (nov["x_Requests"], nov["x_InputTokens"], nov["x_OutputTokens"]) == ("2", "1000100", "500020")
    assert (dec["ServiceName"], dec["PublisherName"], dec["ResourceId"]) == ("gpu-1", "vllm", "gpu-1/llama")
    assert dec["BilledCost"] == "0.000000"
    billed = sum(int(r["BilledCost"].replace(".", "")) for r in rows)
    assert billed == build_report(events).totals.cost_micro_usd


def test_focus_needs_a_charge_period() -> None:
    with pytest.raises(InvalidRequest) as exc:
        focus_rows([event()], bucket="none")
    assert exc.value.param == "bucket"


NOW = datetime(2026, 11, 17, 9, 30, tzinfo=UTC)


def test_query_defaults_and_dates() -> None:
    query = parse_report_query(QueryParams(""), NOW)
    assert (query.since, query.until) == (datetime(2026, 11, 1, tzinfo=UTC), NOW)
    assert (query.group_by, query.bucket, query.format, query.tenants) == (("tenant", "model"), "day", "json", None)
    query = parse_report_query(
        QueryParams("since=2026-11-01&until=2026-11-02T12:00:00 02:00&tenant=acme,globex&tenant=x&format=csv"), NOW
    )
    assert query.since == datetime(2026, 11, 1, tzinfo=UTC)
    assert query.until == datetime(2026, 11, 2, 10, tzinfo=UTC)  # an unencoded '+' arrives as a space
    assert query.tenants == ("acme", "globex", "x") and query.format == "csv"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("since=2026-11-02&until=2026-11-02", "since"),
        ("since=2026-12-01", "since"),  # after the default until (now)
        ("format=xml", "format"),
        ("bucket=week", "bucket"),
        ("group_by=tenant,colour", "group_by"),
        ("format=focus&bucket=none", "bucket"),
        ("tenants=acme", "tenants"),
    ],
)
def test_query_errors_name_the_parameter(params: str, param: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_report_query(QueryParams(params), NOW)
    assert exc.value.param == param and exc.value.http_status == 400
