from __future__ import annotations

import random
from typing import Any

import pytest

from policies.candidates import Candidate, Timeouts
from policies.capabilities import Capabilities, Requirements
from policies.circuit_breaker import BreakerRegistry
from policies.hedging import HedgeConfig, delay_for, hedge_delay, should_hedge
from policies.latency_tracker import LatencyTracker
from policies.observations import DeploymentView, LatencyView, LoadView, RequestView
from policies.pricing import Price, PriceSchedule
from policies.router import STRATEGIES, Explained, RouterState, check_config, decide
from policies.strategies.lowest_latency import LowestLatencyConfig
from policies.strategies.priority import PriorityConfig
from policies.strategies.slo_cost import SloCostConfig
from policies.strategies.spillover import SpilloverConfig


def view(name: str, position: int, **kw: Any) -> DeploymentView:
    return DeploymentView(name=name, position=position, provider=name, provider_kind="openai", **kw)


def priced(micro_per_million: int) -> PriceSchedule:
    return PriceSchedule((Price("test", input=micro_per_million, output=micro_per_million),))


VIEWS = (
    view("gpu", 0, local=True, prices=priced(50_000)),
    view("mini", 1, prices=priced(150_000)),
    view("big", 2, prices=priced(2_500_000), capabilities=Capabilities(context_window=128_000)),
    view("no-tools", 3, capabilities=Capabilities(tools=False)),
)
REQUEST = RequestView(prompt_tokens=1_000, max_output_tokens=500)


def run(strategy: str, request: RequestView = REQUEST, **kw: Any) -> Any:
    kw.setdefault("now", 100.0)
    kw.setdefault("max_attempts", 3)
    kw.setdefault("state", RouterState())
    kw.setdefault("rng", random.Random(0))
    return decide(request, VIEWS, strategy=strategy, **kw)


def test_every_strategy_name_decides() -> None:
    assert STRATEGIES == {
        "priority",
        "weighted",
        "lowest_cost",
        "lowest_latency",
        "least_load",
        "spillover",
        "slo_cost",
    }
    for strategy in STRATEGIES:
        config = SloCostConfig(slo_s=1.0) if strategy == "slo_cost" else None
        decision = run(strategy, strategy_config=config)
        assert sorted(decision.order) == sorted(d.name for d in VIEWS)
        assert decision.max_attempts == 3 and decision.attempts == decision.order[:3]


def test_priority_decision_with_exclusions_and_explain() -> None:
    request = RequestView(requirements=Requirements(tools=True), prompt_tokens=10, deny=frozenset({"mini"}))
    decision = run("priority", request, max_attempts=5)
    assert decision.order == ("gpu", "big")
    assert decision.max_attempts == 2
    assert decision.excluded == (("mini", "is on the tenant's deny list"), ("no-tools", "does not support tools"))
    assert decision.explain == (
        Explained("gpu", 0, True, 0, 0.0, "config order", None),
        Explained("mini", 1, False, None, None, "is on the tenant's deny list", "is on the tenant's deny list"),
        Explained("big", 2, True, 1, 2.0, "config order", None),
        Explained("no-tools", 3, False, None, None, "does not support tools", "does not support tools"),
    )
    assert decision.retry_after_s is None


def test_lowest_cost_prices_the_request() -> None:
    decision = run("lowest_cost")
    assert decision.order == ("gpu", "mini", "big", "no-tools")
    assert decision.ranking.scores == (75.0, 225.0, 3750.0, None)


def test_price_ceiling_and_lowest_cost_share_one_estimate() -> None:
    request = RequestView(prompt_tokens=1_000, max_output_tokens=500, price_ceiling_micro=1_000)
    decision = run("lowest_cost", request)
    assert decision.order == ("gpu", "mini", "no-tools")
    assert decision.excluded == (("big", "would cost up to 3750 micro-USD, above the ceiling of 1000"),)


def test_local_only_request() -> None:
    decision = run("lowest_cost", RequestView(local_only=True))
    assert decision.order == ("gpu",)


def test_unhealthy_servers_go_last_but_stay() -> None:
    loads = {"gpu": LoadView(healthy=False), "mini": LoadView(in_flight=3)}
    decision = run("priority", loads=loads)
    assert decision.order == ("mini", "big", "no-tools", "gpu")
    assert decision.ranking.order[0] == "gpu"
    assert decision.unhealthy == {"gpu"}
    gpu = decision.explain[0]
    assert gpu.rank == 3 and gpu.why.endswith("the server reports itself unhealthy: after every healthy deployment")


def test_breakers_exclude_and_give_a_retry_after_when_nothing_is_left() -> None:
    breakers = BreakerRegistry()
    for name in ("gpu", "mini", "big"):
        for _ in range(5):
            breakers.record(name, 90.0, ok=False)
    breakers.cool_down("no-tools", 90.0, 12.0)
    decision = run("priority", breakers=breakers)
    assert decision.order == () and decision.max_attempts == 0
    assert decision.retry_after_s == pytest.approx(2.0)  # no-tools cools until 102
    assert all(not e.eligible for e in decision.explain)


def test_no_retry_after_when_other_rules_exclude_everything() -> None:
    breakers = BreakerRegistry()
    breakers.cool_down("gpu", 90.0, 60.0)
    decision = run("priority", RequestView(local_only=True, deny=frozenset({"gpu"})), breakers=breakers)
    assert decision.order == () and decision.retry_after_s is None


def test_weighted_rotation_lives_in_the_state() -> None:
    views = (view("a", 0, weight=2), view("b", 1, weight=1))
    state = RouterState()
    firsts = [
        decide(REQUEST, views, strategy="weighted", state=state, now=0.0, max_attempts=2).order[0] for _ in range(6)
    ]
    assert firsts == ["a", "b", "a", "a", "b", "a"]
    dry = state.copy()
    decide(REQUEST, views, strategy="weighted", state=dry, now=0.0, max_attempts=2)
    assert decide(REQUEST, views, strategy="weighted", state=state, now=0.0, max_attempts=2).order[0] == "a"


def test_spillover_through_decide() -> None:
    loads = {"gpu": LoadView(queue_waiting=20)}
    decision = run("spillover", loads=loads, strategy_config=SpilloverConfig())
    assert decision.order == ("mini", "big", "no-tools", "gpu")


def test_lowest_latency_with_tracker_views() -> None:
    tracker = LatencyTracker()
    for name, latency in (("gpu", 0.9), ("mini", 0.2), ("big", 0.5), ("no-tools", 0.7)):
        tracker.observe(name, now=99.0, latency_s=latency)
    decision = run(
        "lowest_latency", latencies=tracker.views(100.0), strategy_config=LowestLatencyConfig(explore_share=0.0)
    )
    assert decision.order == ("mini", "big", "no-tools", "gpu")


def test_slo_cost_through_decide() -> None:
    latencies = {name: LatencyView(p95_latency_s=0.5, samples=20) for name in ("gpu", "mini", "big", "no-tools")}
    latencies["gpu"] = LatencyView(p95_latency_s=3.0, samples=20)
    decision = run("slo_cost", latencies=latencies, strategy_config=SloCostConfig(slo_s=1.0))
    assert decision.order == ("mini", "big", "no-tools", "gpu")


def test_decide_rejects_misuse() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        run("random")
    with pytest.raises(ValueError, match="takes a LowestCostConfig"):
        run("lowest_cost", strategy_config=PriorityConfig())
    with pytest.raises(ValueError, match="RouterState"):
        run("weighted", state=None)
    with pytest.raises(ValueError, match="RouterState"):
        run("spillover", state=None)
    with pytest.raises(ValueError, match="slo_s"):
        run("slo_cost")
    with pytest.raises(ValueError, match=r"random\.Random"):
        run("lowest_latency", rng=None)


def test_check_config() -> None:
    assert check_config("priority", None) == PriorityConfig()
    assert check_config("slo_cost", SloCostConfig(slo_s=2.0)) == SloCostConfig(slo_s=2.0)
    assert isinstance(check_config("spillover", None), SpilloverConfig)
    with pytest.raises(ValueError):
        check_config("fastest", None)
    with pytest.raises(ValueError):
        check_config("slo_cost", None)
    with pytest.raises(ValueError):
        check_config("weighted", PriorityConfig())


def test_route_plan_for_the_attempt_loop() -> None:
    decision = run("lowest_cost", max_attempts=2)
    candidates = {d.name: Candidate(d.name, d.position) for d in VIEWS}
    plan = decision.route_plan(candidates, Timeouts())
    assert [c.name for c in plan.order] == ["gpu", "mini", "big", "no-tools"]
    assert plan.max_attempts == 2


def test_hedge_delay_is_the_p95_clamped() -> None:
    measured = LatencyView(p95_latency_s=3.0, p95_ttft_s=0.8, samples=50)
    assert hedge_delay(measured, stream=True, min_s=0.25, max_s=10.0, default_s=2.0) == 0.8
    assert hedge_delay(measured, stream=False, min_s=0.25, max_s=10.0, default_s=2.0) == 3.0
    assert hedge_delay(measured, stream=False, min_s=0.25, max_s=2.5, default_s=2.0) == 2.5
    quick = LatencyView(p95_ttft_s=0.01, samples=50)
    assert hedge_delay(quick, stream=True, min_s=0.25, max_s=10.0, default_s=2.0) == 0.25
    sparse = LatencyView(p95_ttft_s=0.5, samples=3)
    assert hedge_delay(sparse, stream=True, min_s=0.25, max_s=10.0, default_s=2.0) == 2.0
    assert hedge_delay(LatencyView(), stream=True, min_s=0.25, max_s=10.0, default_s=20.0) == 10.0
    assert delay_for(measured, HedgeConfig(), stream=True) == 0.8


def test_should_hedge() -> None:
    ready: dict[str, Any] = {
        "elapsed_s": 1.0,
        "delay_s": 0.8,
        "first_byte_seen": False,
        "hedges_in_flight": 0,
        "max_hedges": 1,
        "candidates_left": 1,
        "time_left_s": 10.0,
    }
    assert should_hedge(**ready)
    for change in (
        {"elapsed_s": 0.5},
        {"first_byte_seen": True},
        {"hedges_in_flight": 1},
        {"candidates_left": 0},
        {"time_left_s": 0.0},
    ):
        assert not should_hedge(**{**ready, **change})


def test_hedge_config_is_validated() -> None:
    with pytest.raises(ValueError):
        HedgeConfig(min_s=5.0, max_s=1.0)
    with pytest.raises(ValueError):
        HedgeConfig(max_hedges=-1)


def test_dated_prices_are_read_at_prices_at_not_the_breaker_clock() -> None:
    schedule = PriceSchedule((Price("old", input=1_000_000), Price("new", effective_from=1_000.0, input=10)))
    views = (view("dated", 0, prices=schedule), view("flat", 1, prices=priced(500_000)))
    request = RequestView(prompt_tokens=1_000_000)
    monotonic = 50.0
    before = decide(request, views, strategy="lowest_cost", now=monotonic, max_attempts=2, prices_at=999.0)
    after = decide(request, views, strategy="lowest_cost", now=monotonic, max_attempts=2, prices_at=1_000.0)
    assert before.order == ("flat", "dated") and after.order == ("dated", "flat")


def test_decide_reserves_no_half_open_probe() -> None:
    breakers = BreakerRegistry()
    for _ in range(5):
        breakers.record("gpu", 0.0, ok=False)
    for _ in range(3):
        assert run("priority", breakers=breakers, now=31.0).order[0] == "gpu"
    assert breakers.allow("gpu", 31.0)  # the one probe slot is still free for the real attempt
    assert run("priority", breakers=breakers, now=31.0).order[0] == "mini"
