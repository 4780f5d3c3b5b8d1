from __future__ import annotations

import random
from typing import Any

import pytest

from policies.capabilities import Requirements
from policies.observations import DeploymentView, LatencyView, LoadView, RequestView
from policies.strategies import least_load, lowest_cost, lowest_latency, priority, slo_cost, spillover, weighted
from policies.strategies.lowest_latency import LowestLatencyConfig
from policies.strategies.ranking import Ranking
from policies.strategies.slo_cost import SloCostConfig
from policies.strategies.spillover import SpilloverConfig, SpilloverState, SpillThresholds
from policies.strategies.weighted import WeightedState

CHAT = RequestView()
STREAM = RequestView(requirements=Requirements(streaming=True))


def view(name: str, position: int, **kw: Any) -> DeploymentView:
    return DeploymentView(name=name, position=position, provider=name, provider_kind="openai", **kw)


def lat(ewma: float | None = None, ttft: float | None = None, p95: float | None = None, **kw: Any) -> LatencyView:
    return LatencyView(ewma_latency_s=ewma, ewma_ttft_s=ttft, p95_latency_s=p95, **kw)


class FixedRandom(random.Random):
    """random() returns the given values in turn; randrange picks the given index."""

    def __init__(self, values: list[float], index: int = 1) -> None:
        super().__init__(0)
        self.values = values
        self.index = index

    def random(self) -> float:
        return self.values.pop(0)

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        return self.index


def test_ranking_needs_aligned_columns() -> None:
    with pytest.raises(ValueError):
        Ranking(order=("a",), scores=(), why=("x",))


def test_priority_is_config_order() -> None:
    ranking = priority.rank(CHAT, [view("c", 2), view("a", 0), view("b", 1)])
    assert ranking.order == ("a", "b", "c")
    assert ranking.scores == (0.0, 1.0, 2.0)
    assert set(ranking.why) == {"config order"}
    assert priority.rank(CHAT, []).order == ()


def test_weighted_smooth_round_robin_matches_nginx() -> None:
    views = [view("a", 0, weight=5), view("b", 1, weight=1), view("c", 2, weight=1)]
    state = WeightedState()
    picks = "".join(weighted.rank(CHAT, views, state=state).order[0] for _ in range(7))
    assert picks == "aabacaa"  # nginx's documented sequence for 5:1:1
    assert all(score == 0 for score in state.current.values())  # a full cycle returns to zero


def test_weighted_fallbacks_by_weight_then_position() -> None:
    views = [view("a", 0, weight=1), view("b", 1, weight=3), view("c", 2, weight=3), view("z", 3, weight=0)]
    ranking = weighted.rank(CHAT, views, state=WeightedState())
    assert ranking.order == ("b", "c", "a", "z")
    assert ranking.scores == (3, 3, 1, 0)
    assert ranking.why == (
        "picked by smooth weighted round-robin",
        "fallback, by weight",
        "fallback, by weight",
        "weight 0: fallback only",
    )


def test_weighted_all_zero_falls_back_to_position() -> None:
    ranking = weighted.rank(CHAT, [view("b", 1, weight=0), view("a", 0, weight=0)], state=WeightedState())
    assert ranking.order == ("a", "b")


def test_weighted_state_copy_is_independent() -> None:
    views = [view("a", 0, weight=2), view("b", 1, weight=1)]
    state = WeightedState()
    weighted.rank(CHAT, views, state=state)
    twin = state.copy()
    weighted.rank(CHAT, views, state=twin)
    assert state.current != twin.current


def test_lowest_cost_cheapest_first_unknown_last_ties_by_position() -> None:
    views = [view("a", 0), view("b", 1), view("c", 2), view("d", 3)]
    ranking = lowest_cost.rank(CHAT, views, costs={"a": 30, "b": None, "c": 10, "d": 10})
    assert ranking.order == ("c", "d", "a", "b")
    assert ranking.scores == (10.0, 10.0, 30.0, None)
    assert ranking.why[-1] == "unknown price: after every priced deployment"


def test_lowest_latency_uses_total_for_plain_requests_and_ttft_for_streams() -> None:
    views = [view("a", 0), view("b", 1)]
    latencies = {"a": lat(ewma=1.0, ttft=0.5), "b": lat(ewma=2.0, ttft=0.1)}
    config = LowestLatencyConfig(explore_share=0.0)
    plain = lowest_latency.rank(CHAT, views, latencies=latencies, loads={}, config=config, rng=None)
    assert plain.order == ("a", "b") and plain.scores == (1.0, 2.0)
    streamed = lowest_latency.rank(STREAM, views, latencies=latencies, loads={}, config=config, rng=None)
    assert streamed.order == ("b", "a") and streamed.scores == (0.1, 0.5)
    forced = lowest_latency.rank(
        CHAT, views, latencies=latencies, loads={}, config=LowestLatencyConfig("ttft", 0.0), rng=None
    )
    assert forced.order == ("b", "a")


def test_lowest_latency_ttft_falls_back_to_total_latency() -> None:
    views = [view("a", 0), view("b", 1)]
    latencies = {"a": lat(ewma=0.3), "b": lat(ewma=2.0, ttft=0.5)}
    ranking = lowest_latency.rank(
        STREAM, views, latencies=latencies, loads={}, config=LowestLatencyConfig(explore_share=0.0), rng=None
    )
    assert ranking.order == ("a", "b")


def test_lowest_latency_probes_unmeasured_idle_deployments_one_at_a_time() -> None:
    views = [view("fast", 0), view("new", 1), view("newer", 2)]
    latencies = {"fast": lat(ewma=0.2)}
    loads = {"newer": LoadView(in_flight=1)}
    ranking = lowest_latency.rank(
        CHAT, views, latencies=latencies, loads=loads, config=LowestLatencyConfig(explore_share=0.0), rng=None
    )
    assert ranking.order == ("new", "fast", "newer")
    assert ranking.scores == (None, 0.2, None)
    assert ranking.why[0].startswith("no latency samples yet and nothing in flight")
    assert ranking.why[2].startswith("no latency samples yet; waiting")


def test_lowest_latency_explores_with_the_injected_rng() -> None:
    views = [view("a", 0), view("b", 1), view("c", 2)]
    latencies = {"a": lat(ewma=0.1), "b": lat(ewma=0.2), "c": lat(ewma=0.3)}
    config = LowestLatencyConfig(explore_share=0.05)
    kept = lowest_latency.rank(CHAT, views, latencies=latencies, loads={}, config=config, rng=FixedRandom([0.05]))
    assert kept.order == ("a", "b", "c")
    explored = lowest_latency.rank(
        CHAT, views, latencies=latencies, loads={}, config=config, rng=FixedRandom([0.01], index=2)
    )
    assert explored.order == ("c", "a", "b")
    assert explored.scores == (0.3, 0.1, 0.2)
    assert explored.why[0].startswith("promoted at random")


def test_lowest_latency_exploration_share_is_about_right() -> None:
    views = [view("a", 0), view("b", 1)]
    latencies = {"a": lat(ewma=0.1), "b": lat(ewma=0.2)}
    rng = random.Random(42)
    config = LowestLatencyConfig(explore_share=0.1)
    firsts = [
        lowest_latency.rank(CHAT, views, latencies=latencies, loads={}, config=config, rng=rng).order[0]
        for _ in range(5_000)
    ]
    assert 0.08 < firsts.count("b") / len(firsts) < 0.12


def test_lowest_latency_needs_an_rng_to_explore() -> None:
    views = [view("a", 0), view("b", 1)]
    with pytest.raises(ValueError):
        lowest_latency.rank(CHAT, views, latencies={}, loads={}, config=LowestLatencyConfig(), rng=None)
    single = lowest_latency.rank(CHAT, views[:1], latencies={}, loads={}, config=LowestLatencyConfig(), rng=None)
    assert single.order == ("a",)


def test_lowest_latency_config_is_validated() -> None:
    with pytest.raises(ValueError):
        LowestLatencyConfig(metric="p99")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        LowestLatencyConfig(explore_share=1.5)


def test_least_load_in_flight_and_server_queues() -> None:
    views = [view("hosted", 0), view("gpu-1", 1), view("gpu-2", 2)]
    loads = {
        "hosted": LoadView(in_flight=5),
        "gpu-1": LoadView(in_flight=1, queue_waiting=2, running=3, kv_cache_usage=0.5),
        "gpu-2": LoadView(in_flight=0, queue_waiting=0, running=2, kv_cache_usage=0.1),
    }
    ranking = least_load.rank(CHAT, views, loads=loads)
    assert ranking.order == ("gpu-2", "hosted", "gpu-1")
    assert ranking.scores == (2.0, 5.0, 6.0)


def test_least_load_kv_cache_breaks_ties_then_position() -> None:
    views = [view("a", 0), view("b", 1), view("c", 2)]
    loads = {
        "a": LoadView(running=4, kv_cache_usage=0.8),
        "b": LoadView(running=4, kv_cache_usage=0.2),
        "c": LoadView(running=4, kv_cache_usage=0.2),
    }
    assert least_load.rank(CHAT, views, loads=loads).order == ("b", "c", "a")
    assert least_load.rank(CHAT, views, loads={}).order == ("a", "b", "c")


SPILL = SpilloverConfig(spill_when=SpillThresholds(queue_waiting=8, kv_cache_usage=0.9))


def spill_rank(loads: dict[str, LoadView], state: SpilloverState, views: list[DeploymentView] | None = None) -> Ranking:
    views = views or [view("gpu", 0, local=True), view("openai", 1), view("anthropic", 2)]
    return spillover.rank(CHAT, views, loads=loads, config=SPILL, state=state)


def test_spillover_local_first_while_under_thresholds() -> None:
    ranking = spill_rank({"gpu": LoadView(queue_waiting=3, kv_cache_usage=0.5)}, SpilloverState())
    assert ranking.order == ("gpu", "openai", "anthropic")
    assert ranking.scores == (3.0, None, None)


def test_spillover_spills_at_a_threshold_and_resumes_only_below_resume() -> None:
    state = SpilloverState()
    assert spill_rank({"gpu": LoadView(queue_waiting=8)}, state).order == ("openai", "anthropic", "gpu")
    assert state.spilled == {"gpu"}
    assert spill_rank({"gpu": LoadView(queue_waiting=5)}, state).order[0] == "openai"  # inside the band
    assert spill_rank({"gpu": LoadView(queue_waiting=4)}, state).order[0] == "openai"  # resume is strictly below 4
    assert spill_rank({"gpu": LoadView(queue_waiting=3.9)}, state).order[0] == "gpu"
    assert state.spilled == set()
    assert spill_rank({"gpu": LoadView(queue_waiting=7, kv_cache_usage=0.95)}, state).order[0] == "openai"
    # Resuming needs every figure below its resume threshold (kv 0.45 here).
    assert spill_rank({"gpu": LoadView(queue_waiting=0, kv_cache_usage=0.5)}, state).order[0] == "openai"
    assert spill_rank({"gpu": LoadView(queue_waiting=0, kv_cache_usage=0.4)}, state).order[0] == "gpu"


def test_spillover_unreported_figures_never_trigger() -> None:
    state = SpilloverState()
    assert spill_rank({"gpu": LoadView(in_flight=500)}, state).order[0] == "gpu"
    assert spill_rank({}, state).order[0] == "gpu"


def test_spillover_in_flight_threshold_for_runtimes_without_queues() -> None:
    config = SpilloverConfig(spill_when=SpillThresholds(in_flight=4))
    views = [view("onnx", 0, local=True), view("openai", 1)]
    state = SpilloverState()
    assert spillover.rank(CHAT, views, loads={"onnx": LoadView(in_flight=4)}, config=config, state=state).order == (
        "openai",
        "onnx",
    )
    assert spillover.rank(CHAT, views, loads={"onnx": LoadView(in_flight=1)}, config=config, state=state).order == (
        "onnx",
        "openai",
    )


def test_spillover_several_local_deployments_least_loaded_first() -> None:
    views = [view("gpu-1", 0, local=True), view("gpu-2", 1, local=True), view("openai", 2)]
    state = SpilloverState()
    loads = {"gpu-1": LoadView(queue_waiting=3, running=10), "gpu-2": LoadView(queue_waiting=1, running=4)}
    assert spill_rank(loads, state, views).order == ("gpu-2", "gpu-1", "openai")
    loads["gpu-2"] = LoadView(queue_waiting=9)
    ranking = spill_rank(loads, state, views)
    assert ranking.order == ("gpu-1", "openai", "gpu-2")
    assert ranking.why[2] == "local but spilled over until its load falls below resume_when"


def test_spillover_explicit_resume_thresholds_and_validation() -> None:
    config = SpilloverConfig(
        spill_when=SpillThresholds(queue_waiting=8, kv_cache_usage=0.95),
        resume_when=SpillThresholds(queue_waiting=2, kv_cache_usage=0.85),
    )
    assert config.resume == SpillThresholds(queue_waiting=2, kv_cache_usage=0.85)
    assert SPILL.resume == SpillThresholds(queue_waiting=4, kv_cache_usage=0.45)
    with pytest.raises(ValueError):
        SpilloverConfig(spill_when=SpillThresholds(queue_waiting=8), resume_when=SpillThresholds(queue_waiting=9))
    with pytest.raises(ValueError):
        SpilloverConfig(spill_when=SpillThresholds(queue_waiting=8), resume_when=SpillThresholds(kv_cache_usage=0.5))
    with pytest.raises(ValueError):
        SpilloverConfig(resume_fraction=0.0)


def test_spillover_state_copy_is_independent() -> None:
    state = SpilloverState()
    spill_rank({"gpu": LoadView(queue_waiting=10)}, state)
    twin = state.copy()
    spill_rank({"gpu": LoadView(queue_waiting=0)}, twin)
    assert state.spilled == {"gpu"} and twin.spilled == set()


SLO = SloCostConfig(slo_s=1.0, min_samples=5)


def test_slo_cost_cheapest_that_meets_the_objective() -> None:
    views = [view("dear-fast", 0), view("cheap-slow", 1), view("mid-ok", 2)]
    latencies = {
        "dear-fast": lat(p95=0.3, samples=50),
        "cheap-slow": lat(p95=2.5, samples=50),
        "mid-ok": lat(p95=0.9, samples=50),
    }
    costs = {"dear-fast": 900, "cheap-slow": 100, "mid-ok": 400}
    ranking = slo_cost.rank(CHAT, views, latencies=latencies, costs=costs, config=SLO)
    assert ranking.order == ("mid-ok", "dear-fast", "cheap-slow")
    assert ranking.scores == (400.0, 900.0, 2.5)


def test_slo_cost_fastest_when_none_meets_it() -> None:
    views = [view("a", 0), view("b", 1)]
    latencies = {"a": lat(p95=3.0, samples=50), "b": lat(p95=1.5, samples=50)}
    ranking = slo_cost.rank(CHAT, views, latencies=latencies, costs={"a": 1, "b": 1000}, config=SLO)
    assert ranking.order == ("b", "a")
    assert ranking.why[0].startswith("misses the latency objective")


def test_slo_cost_unjudged_come_after_meeting_and_before_missing() -> None:
    views = [view("ok", 0), view("new", 1), view("few", 2), view("slow", 3)]
    latencies = {
        "ok": lat(p95=0.5, samples=10),
        "few": lat(p95=0.1, samples=2),
        "slow": lat(p95=5.0, samples=10),
    }
    costs = {"ok": 500, "new": 100, "few": 50, "slow": 1}
    ranking = slo_cost.rank(CHAT, views, latencies=latencies, costs=costs, config=SLO)
    assert ranking.order == ("ok", "few", "new", "slow")


def test_slo_cost_streams_judge_time_to_first_token() -> None:
    views = [view("a", 0), view("b", 1)]
    latencies = {
        "a": LatencyView(p95_latency_s=4.0, p95_ttft_s=0.4, samples=10),
        "b": LatencyView(p95_latency_s=0.8, samples=10),
    }
    costs = {"a": 10, "b": 20}
    assert slo_cost.rank(STREAM, views, latencies=latencies, costs=costs, config=SLO).order == ("a", "b")
    assert slo_cost.rank(CHAT, views, latencies=latencies, costs=costs, config=SLO).order == ("b", "a")


def test_slo_cost_unknown_price_after_priced_among_meeting() -> None:
    views = [view("a", 0), view("b", 1)]
    latencies = {"a": lat(p95=0.1, samples=9), "b": lat(p95=0.1, samples=9)}
    ranking = slo_cost.rank(CHAT, views, latencies=latencies, costs={"b": 7}, config=SLO)
    assert ranking.order == ("b", "a") and ranking.scores == (7.0, None)


def test_slo_cost_config_is_validated() -> None:
    with pytest.raises(ValueError):
        SloCostConfig(slo_s=0)
    with pytest.raises(ValueError):
        SloCostConfig(slo_s=1, metric="p50")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SloCostConfig(slo_s=1, min_samples=0)
