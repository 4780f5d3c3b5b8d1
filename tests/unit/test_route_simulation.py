from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import typer
from typer.testing import CliRunner

from gateway.cli_route_simulate import simulate
from gateway.config import load_config
from gateway.route_simulation import SimulationReport, collect_traffic, replay
from gateway.state import build_state

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "route_simulation"
DEAR = "mock/dear"
CHEAP = "mock/cheap"
T0 = 1_735_689_600.0  # 2025-01-01T00:00:00Z

# USD per million tokens, so one token costs 10 / 30 (dear) or 1 / 2 (cheap) micro-USD.
CONFIG = """
providers: {{mock: {{kind: mock}}}}
policies:
  candidate: {{strategy: {strategy}{options}}}
models:
  chat:
    policy: candidate
    deployments:
      - {{provider: mock, model: dear, price: {{input: 10, output: 30}}}}
      - {{provider: mock, model: cheap, price: {{input: 1, output: 2}}}}
"""


def dear_cost(prompt: int, completion: int) -> int:
    return 10 * prompt + 30 * completion


def cheap_cost(prompt: int, completion: int) -> int:
    return prompt + 2 * completion


def write_config(tmp_path: Path, strategy: str, options: str = "") -> Path:
    path = tmp_path / f"{strategy}.yaml"
    path.write_text(CONFIG.format(strategy=strategy, options=options))
    return path


def event(
    n: int,
    *,
    ts: float | None = None,
    deployment: str | None = DEAR,
    prompt: int = 1000,
    completion: int = 500,
    latency_ms: float = 500.0,
    status: int = 200,
    model: str = "chat",
    stream: bool = False,
) -> dict[str, Any]:
    served = status == 200 and deployment is not None
    cost = {DEAR: dear_cost, CHEAP: cheap_cost}[deployment](prompt, completion) if served and deployment else 0
    return {
        "request_id": f"req-{n}",
        "ts": T0 + 10 * n if ts is None else ts,
        "tenant": "acme",
        "endpoint": "chat/completions",
        "model": model,
        "deployment": deployment,
        "status": status,
        "stream": stream,
        "prompt_tokens": prompt if served else 0,
        "completion_tokens": completion if served else 0,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "cost_micro_usd": cost,
        "latency_ms": latency_ms,
        "ttft_ms": None,
    }


async def run(config: Path, records: Iterable[object], seed: int = 0) -> SimulationReport:
    async with aiohttp.ClientSession() as session:
        state = build_state(load_config(config, {}), session)
        try:
            return replay(state, collect_traffic(records), seed=seed)
        finally:
            await state.aclose()


def shares(outcome: Any) -> dict[str, int]:
    return {s.deployment: s.requests for s in outcome.shares}


async def test_lowest_cost_moves_traffic_to_the_cheaper_deployment(tmp_path: Path) -> None:
    sizes = [(1000, 500), (20, 4000), (7, 3), (12345, 0), (0, 999)]
    records = [event(i, prompt=p, completion=c) for i, (p, c) in enumerate(sizes)]
    report = await run(write_config(tmp_path, "lowest_cost"), records)
    (chat,) = report.models
    assert chat.requests == 5 and chat.strategy == "lowest_cost" and chat.policy == "candidate"
    assert chat.actual.cost_micro_usd == sum(dear_cost(p, c) for p, c in sizes)
    assert chat.simulated.cost_micro_usd == sum(cheap_cost(p, c) for p, c in sizes)
    assert chat.cost_delta_micro_usd == sum(cheap_cost(p, c) - dear_cost(p, c) for p, c in sizes)
    assert chat.cost_delta_pct == pytest.approx(100 * chat.cost_delta_micro_usd / chat.actual.cost_micro_usd)
    assert shares(chat.actual) == {DEAR: 5}
    assert shares(chat.simulated) == {CHEAP: 5}
    assert chat.simulated.shares[0].share == 1.0
    assert chat.unroutable == chat.unpriced == 0


async def test_the_same_policy_as_what_happened_changes_nothing(tmp_path: Path) -> None:
    latencies = [300.0, 1200.0, 450.0, 800.0, 5000.0, 610.0, 720.0]
    records = [event(i, latency_ms=x, stream=i % 2 == 0) for i, x in enumerate(latencies)]
    records.append(event(99, status=502, latency_ms=30_000.0))  # failed on dear, charged nothing
    report = await run(write_config(tmp_path, "priority"), records)
    (chat,) = report.models
    assert chat.requests == 8
    assert chat.simulated.cost_micro_usd == chat.actual.cost_micro_usd == 7 * dear_cost(1000, 500)
    assert chat.cost_delta_micro_usd == 0 and chat.cost_delta_pct == 0
    assert (chat.actual.p50_ms, chat.actual.p95_ms) == (720.0, 5000.0)
    assert (chat.simulated.p50_ms, chat.simulated.p95_ms) == (720.0, 5000.0)
    assert chat.p50_delta_ms == chat.p95_delta_ms == 0
    assert chat.actual.shares == chat.simulated.shares
    assert chat.latency_unknown == 0


async def test_moved_requests_take_the_latency_the_deployment_showed(tmp_path: Path) -> None:
    records = [event(i, latency_ms=1000.0 + 100 * i) for i in range(10)]  # dear: 1000..1900 ms
    records += [event(10 + i, deployment=CHEAP, latency_ms=100.0 * (i + 1)) for i in range(6)]  # cheap: 100..600
    report = await run(write_config(tmp_path, "lowest_cost"), records)
    (chat,) = report.models
    # 16 latencies in all: the 8th is 1100 ms, the 16th 1900 ms.
    assert (chat.actual.p50_ms, chat.actual.p95_ms) == (1100.0, 1900.0)
    # Everything on cheap: its 6 requests keep their own latency and the 10 moved ones follow its distribution.
    assert (chat.simulated.p50_ms, chat.simulated.p95_ms) == (300.0, 600.0)
    assert (chat.p50_delta_ms, chat.p95_delta_ms) == (-800.0, -1300.0)
    assert chat.simulated.latency_requests == 16 and chat.latency_unknown == 0


async def test_too_few_latencies_leave_moved_requests_unknown(tmp_path: Path) -> None:
    records = [event(i, latency_ms=1000.0) for i in range(10)]
    records += [event(10 + i, deployment=CHEAP, latency_ms=100.0 * (i + 1)) for i in range(3)]
    report = await run(write_config(tmp_path, "lowest_cost"), records)
    (chat,) = report.models
    assert chat.latency_unknown == 10
    assert chat.simulated.latency_requests == 3
    assert (chat.simulated.p50_ms, chat.simulated.p95_ms) == (200.0, 300.0)


async def test_latency_strategies_see_the_history_as_it_happened(tmp_path: Path) -> None:
    # One request every 10 s, alternating: dear answers in 2 s, cheap in 0.2 s.
    records = [
        event(i, deployment=DEAR if i % 2 == 0 else CHEAP, latency_ms=2000.0 if i % 2 == 0 else 200.0)
        for i in range(12)
    ]
    report = await run(write_config(tmp_path, "lowest_latency", ", explore_share: 0"), records)
    (chat,) = report.models
    # Nothing is known at first: dear is probed (config order), then cheap; from then on cheap is faster.
    assert shares(chat.simulated) == {DEAR: 1, CHEAP: 11}


async def test_load_strategies_see_the_requests_in_flight(tmp_path: Path) -> None:
    # Four requests started 10 ms apart, each taking 10 s: all in flight together.
    records = [event(i, ts=T0 + 0.01 * i, latency_ms=10_000.0) for i in range(4)]
    records.append(event(9, ts=T0 + 60))  # started when all had finished
    report = await run(write_config(tmp_path, "least_load"), records)
    (chat,) = report.models
    assert shares(chat.simulated) == {DEAR: 3, CHEAP: 2}


async def test_the_seed_makes_random_strategies_repeatable(tmp_path: Path) -> None:
    records = [event(i, deployment=DEAR if i % 3 else CHEAP, latency_ms=100.0 + i) for i in range(60)]
    config = write_config(tmp_path, "lowest_latency", ", explore_share: 0.5")
    first, again, other = await run(config, records, 7), await run(config, records, 7), await run(config, records, 8)
    assert first == again
    assert first.seed == 7 and other.seed == 8


async def test_models_the_candidate_lacks_are_skipped_and_counted(tmp_path: Path) -> None:
    records = [event(0), event(1, model="retired"), event(2, model="retired"), event(3, model="other")]
    report = await run(write_config(tmp_path, "priority"), records)
    assert [m.model for m in report.models] == ["chat"]
    assert report.replayed == 1
    assert report.skipped == (("other", 1), ("retired", 2))
    assert report.skipped_requests == 3


async def test_malformed_records_are_counted_not_fatal(tmp_path: Path) -> None:
    records: list[object] = [
        None,  # a line that was not JSON
        "text",
        [1, 2],
        {"model": "chat", "status": 200},  # no ts
        {"ts": "yesterday", "model": "chat", "status": 200},
        {"ts": T0, "status": 200},  # no model
        {**event(50), "prompt_tokens": "many"},
        {**event(51), "stream": "yes"},
        {**event(52), "status": True},
        event(0),
        event(0),  # the same request twice
        event(1),
    ]
    report = await run(write_config(tmp_path, "priority"), records)
    assert report.malformed == 9
    assert report.duplicates == 1
    assert report.replayed == 2


async def test_a_tenant_policy_override_is_honoured(tmp_path: Path) -> None:
    config = tmp_path / "tenants.yaml"
    text = CONFIG.format(strategy="priority", options="")
    text = text.replace("policies:\n", "policies:\n  cheapest: {strategy: lowest_cost}\n")
    config.write_text(text + "tenants:\n  acme: {routing: {policy: cheapest}}\n")
    records = [event(0), {**event(1), "tenant": "someone-else"}]
    report = await run(config, records)
    (chat,) = report.models
    assert shares(chat.simulated) == {DEAR: 1, CHEAP: 1}
    assert chat.policy == "candidate, cheapest"


def app() -> typer.Typer:
    cli = typer.Typer()
    cli.command()(simulate)
    return cli


def ledger(tmp_path: Path) -> Path:
    """A data_dir's ledger: one day of the fixture, and the archive's unreadable entries beside it."""
    root = tmp_path / "ledger"
    (root / "2025-01-01").mkdir(parents=True)
    shutil.copy(FIXTURES / "ledger_sample.jsonl", root / "2025-01-01" / "gw-1.jsonl")
    (root / "unreadable").mkdir()
    (root / "unreadable" / "gw-1.jsonl").write_text('{"stream": "sy:{acme}:usage", "raw": "garbage"}\n')
    return root


def test_cli_prints_a_table_per_model(tmp_path: Path) -> None:
    config = write_config(tmp_path, "lowest_cost")
    result = CliRunner().invoke(app(), ["--policy", str(config), "--traffic", str(ledger(tmp_path))])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "chat: 6 requests" in out
    assert "0.150000 USD" in out and "0.012000 USD" in out and "-0.138000 USD (-92.0%)" in out
    assert "mock/dear 100%" in out and "mock/cheap 100%" in out
    assert "600 ms" in out and "900 ms" in out and "unknown" in out
    assert "1 skipped" in out and "retired-model (1)" in out
    assert "1 malformed lines ignored" in out and "1 duplicate events ignored" in out


def test_cli_prints_json_with_the_same_figures(tmp_path: Path) -> None:
    config = write_config(tmp_path, "lowest_cost")
    sample = FIXTURES / "ledger_sample.jsonl"
    extra = tmp_path / "export.jsonl"
    extra.write_bytes(orjson.dumps(event(100, ts=T0 + 3600)) + b"\n\n")
    args = ["--policy", str(config), "--traffic", str(sample), "--traffic", str(extra), "--format", "json"]
    result = CliRunner().invoke(app(), args)
    assert result.exit_code == 0, result.output
    data = orjson.loads(result.stdout)
    (chat,) = data["models"]
    assert chat["requests"] == 7
    assert chat["actual"]["cost_usd"] == 0.175
    assert chat["simulated"]["cost_usd"] == 0.014
    assert chat["delta"] == {"cost_usd": -0.161, "cost_pct": -92.0, "p50_ms": None, "p95_ms": None}
    assert chat["actual"]["p50_ms"] == 600.0 and chat["actual"]["p95_ms"] == 900.0
    assert chat["actual"]["deployments"] == {DEAR: {"requests": 7, "share": 1.0}}
    assert chat["simulated"]["deployments"] == {CHEAP: {"requests": 7, "share": 1.0}}
    assert chat["simulated"]["latency_unknown"] == 7 and chat["simulated"]["p50_ms"] is None
    assert data["skipped"] == {"requests": 1, "models": {"retired-model": 1}}
    assert (data["malformed"], data["duplicates"], data["replayed"], data["seed"]) == (1, 1, 7, 0)


def test_cli_reports_a_bad_config_and_a_missing_traffic_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: {chat: {deployments: [{provider: nowhere}]}}\n")
    result = CliRunner().invoke(app(), ["--policy", str(bad), "--traffic", str(FIXTURES)])
    assert result.exit_code == 1
    assert "unknown provider 'nowhere'" in result.stderr
    config = write_config(tmp_path, "priority")
    result = CliRunner().invoke(app(), ["--policy", str(config), "--traffic", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 1
    assert "no such file or directory" in result.stderr
