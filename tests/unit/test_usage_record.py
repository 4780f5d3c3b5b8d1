"""`usage_record`: what a request's usage record holds, from the principal, the route and the priced deployment.

It builds the record from a dict of its fields (`record_of`), not through `__init__`: the record must still
be the one `__init__` would build, field for field and key for key."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import orjson
import pytest

from gateway.accounting import usage_record
from gateway.auth import Principal
from gateway.config import load_config
from gateway.settlement import script_args
from gateway.state import build_state
from gateway.usage_record import FIELD_NAMES, UsageRecord, record_of
from providers.base import Endpoint, Usage

CONFIG = """
providers: {mock: {kind: mock}}
models:
  chat:
    deployments:
      - {provider: mock, model: dear, price: {input: 10, output: 30}}
"""


async def test_usage_record_attributes_and_prices_the_request(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    principal = Principal(tenant="acme", team="search", key_id="k-1", project="p")
    async with aiohttp.ClientSession() as session:
        state = build_state(load_config(path, {}), session)
        try:
            route = state.models["chat"]
            record = usage_record(
                request_id="r-1",
                principal=principal,
                tags={"feature": "faq"},
                endpoint=Endpoint.CHAT,
                route=route,
                target=route.deployments[0],
                status=200,
                stream=True,
                attempts=2,
                usage=Usage(prompt_tokens=100, completion_tokens=20, cached_tokens=10, cache_write_tokens=5),
                duration=0.123456,
                ttft=0.0205,
                error=None,
                images=1,
                audio_seconds=2.5,
            )
        finally:
            await state.aclose()
    assert type(record) is UsageRecord
    assert list(vars(record)) == list(FIELD_NAMES)  # __init__'s order: the JSON reads the same
    rebuilt = UsageRecord(**{name: getattr(record, name) for name in FIELD_NAMES})
    assert record == rebuilt
    assert orjson.dumps(record) == orjson.dumps(rebuilt)
    # The ledger's event is the record's JSON: the settle script's arguments serialize its __dict__.
    call = script_args("acme", [(record, {})], 60, 100)  # numkeys, keys, 4 arguments, event, settlement
    assert call[1 + call[0] + 4 :] == [orjson.dumps(rebuilt), b"{}"]
    assert orjson.loads(orjson.dumps(record))["tags"] == {"feature": "faq"}
    assert (record.tenant, record.team, record.project, record.key_id) == ("acme", "search", "p", "k-1")
    assert (record.deployment, record.provider, record.provider_kind) == (route.deployments[0].name, "mock", "mock")
    assert (record.latency_ms, record.ttft_ms) == (123.456, 20.5)
    assert record.cost_micro_usd == 10 * 100 + 30 * 20  # USD per million tokens: micro-USD per token
    assert record.price_version is not None
    assert record.currency == "USD"


def test_record_of_refuses_a_missing_or_extra_field() -> None:
    values = dict.fromkeys(FIELD_NAMES)
    assert record_of(dict(values)).request_id is None
    with pytest.raises(ValueError, match="31 fields"):
        record_of({k: v for k, v in values.items() if k != "currency"})
    with pytest.raises(ValueError, match="31 fields"):
        record_of({**values, "surplus": 1})
