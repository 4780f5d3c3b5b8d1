from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from policies.circuit_breaker import BreakerConfig, BreakerRegistry
from policies.observations import DeploymentView, LatencyView, LoadView, RequestView
from policies.router import STRATEGIES, RouterState, StrategyConfig, decide
from policies.strategies import lowest_cost, spillover, weighted
from policies.strategies.slo_cost import SloCostConfig
from policies.strategies.spillover import SpilloverConfig, SpilloverState, SpillThresholds
from policies.strategies.weighted import WeightedState

NOW = 1_000.0


@dataclass(frozen=True)
class World:
    views: tuple[DeploymentView, ...]
    loads: dict[str, LoadView]
    latencies: dict[str, LatencyView]
    open_circuits: frozenset[str]


@st.composite
def worlds(draw: st.DrawFn) -> World:
    count = draw(st.integers(min_value=1, max_value=8))
    views, loads, latencies, opened = [], {}, {}, set()
    for i in range(count):
        name = f"d{i}"
        views.append(
            DeploymentView(
                name=name,
                position=i,
                provider=name,
                provider_kind="vllm" if i % 2 else "openai",
                local=draw(st.booleans()),
                weight=float(draw(st.integers(min_value=0, max_value=5))),
                estimated_cost_micro=draw(st.none() | st.integers(min_value=0, max_value=10_000)),
            )
        )
        reported = draw(st.booleans())
        loads[name] = LoadView(
            in_flight=draw(st.integers(min_value=0, max_value=20)),
            queue_waiting=float(draw(st.integers(min_value=0, max_value=20))) if reported else None,
            running=float(draw(st.integers(min_value=0, max_value=20))) if reported else None,
            kv_cache_usage=draw(st.floats(min_value=0, max_value=1)) if reported else None,
            healthy=draw(st.booleans()),
        )
        if draw(st.booleans()):
            latency = draw(st.floats(min_value=0.01, max_value=10))
            latencies[name] = LatencyView(
                ewma_latency_s=latency,
                ewma_ttft_s=latency / 4,
                p95_latency_s=latency * 2,
                p95_ttft_s=latency / 2,
                samples=draw(st.integers(min_value=0, max_value=50)),
            )
        if draw(st.booleans()):
            opened.add(name)
    return World(tuple(views), loads, latencies, frozenset(opened))


def breakers_for(world: World) -> BreakerRegistry:
    registry = BreakerRegistry(BreakerConfig(consecutive_failures=1, base_cooldown_s=60.0))
    for name in world.open_circuits:
        registry.record(name, NOW - 1, ok=False)
    return registry


def config_for(strategy: str) -> StrategyConfig | None:
    return SloCostConfig(slo_s=2.0) if strategy == "slo_cost" else None


@given(weights=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=6), cycles=st.integers(1, 3))
def test_smooth_weighted_round_robin_is_exact_over_full_cycles(weights: list[int], cycles: int) -> None:
    views = [
        DeploymentView(name=f"d{i}", position=i, provider="p", provider_kind="openai", weight=float(w))
        for i, w in enumerate(weights)
    ]
    state = WeightedState()
    picks = Counter(weighted.rank(RequestView(), views, state=state).order[0] for _ in range(cycles * sum(weights)))
    assert picks == Counter({f"d{i}": cycles * w for i, w in enumerate(weights)})


@given(
    weights=st.lists(st.floats(min_value=0.1, max_value=10), min_size=1, max_size=6),
    picks=st.integers(min_value=1, max_value=300),
)
def test_smooth_weighted_round_robin_tracks_the_ratios_at_every_step(weights: list[float], picks: int) -> None:
    views = [
        DeploymentView(name=f"d{i}", position=i, provider="p", provider_kind="openai", weight=w)
        for i, w in enumerate(weights)
    ]
    state = WeightedState()
    counts = Counter(weighted.rank(RequestView(), views, state=state).order[0] for _ in range(picks))
    total = sum(weights)
    for i, w in enumerate(weights):
        # count = (picks * w - running score) / total, and the running scores stay bounded (a little
        # over ±total in practice), so the counts never drift from the ratios.
        assert abs(counts[f"d{i}"] - picks * w / total) <= len(weights)


@given(world=worlds(), strategy=st.sampled_from(sorted(STRATEGIES)), seed=st.integers(0, 2**32 - 1))
def test_an_open_circuit_is_never_chosen_first_while_a_healthy_eligible_one_exists(
    world: World, strategy: str, seed: int
) -> None:
    decision = decide(
        RequestView(),
        world.views,
        strategy=strategy,
        strategy_config=config_for(strategy),
        loads=world.loads,
        latencies=world.latencies,
        breakers=breakers_for(world),
        state=RouterState(),
        rng=random.Random(seed),
        now=NOW,
        max_attempts=3,
    )
    assert not world.open_circuits & set(decision.order)
    closed = [d.name for d in world.views if d.name not in world.open_circuits]
    if closed:
        assert decision.order[0] not in world.open_circuits
        if any(world.loads[n].healthy for n in closed):
            assert world.loads[decision.order[0]].healthy
    assert sorted(decision.order) == sorted(closed)


@given(world=worlds())
def test_lowest_cost_never_ranks_a_pricier_deployment_before_a_cheaper_one(world: World) -> None:
    costs = {d.name: d.estimated_cost_micro for d in world.views}
    ranked = lowest_cost.rank(RequestView(), world.views, costs=costs).order
    seen_unknown = False
    previous = -1
    for name in ranked:
        cost = costs[name]
        if cost is None:
            seen_unknown = True
            continue
        assert not seen_unknown, "a priced deployment after one of unknown price"
        assert cost >= previous
        previous = cost


@given(world=worlds())
def test_lowest_cost_through_decide_keeps_healthy_ones_in_cost_order(world: World) -> None:
    decision = decide(RequestView(), world.views, strategy="lowest_cost", loads=world.loads, now=NOW, max_attempts=8)
    by_name = {d.name: d.estimated_cost_micro for d in world.views}
    healthy = [by_name[n] for n in decision.order if world.loads[n].healthy]
    priced = [c for c in healthy if c is not None]
    assert priced == sorted(priced)
    assert healthy[: len(priced)] == priced  # unknown prices after every priced one


SPILL = SpilloverConfig(spill_when=SpillThresholds(queue_waiting=8, kv_cache_usage=0.9, in_flight=20))
# Resume thresholds: queue 4, kv 0.45, in flight 10. Strictly inside the band on every figure:
inside = st.builds(
    LoadView,
    in_flight=st.integers(min_value=11, max_value=19),
    queue_waiting=st.floats(min_value=4, max_value=8, exclude_min=True, exclude_max=True),
    kv_cache_usage=st.floats(min_value=0.45, max_value=0.9, exclude_min=True, exclude_max=True),
    running=st.none() | st.floats(min_value=0, max_value=100),
)


@given(start_spilled=st.booleans(), loads=st.lists(inside, min_size=1, max_size=50))
def test_spillover_never_flaps_while_load_oscillates_inside_the_band(
    start_spilled: bool, loads: list[LoadView]
) -> None:
    views = [
        DeploymentView(name="gpu", position=0, provider="gpu", provider_kind="vllm", local=True),
        DeploymentView(name="openai", position=1, provider="openai", provider_kind="openai"),
    ]
    state = SpilloverState()
    entry = LoadView(queue_waiting=9.0) if start_spilled else LoadView(queue_waiting=0.0)
    first = spillover.rank(RequestView(), views, loads={"gpu": entry}, config=SPILL, state=state).order[0]
    assert first == ("openai" if start_spilled else "gpu")
    for load in loads:
        ranking = spillover.rank(RequestView(), views, loads={"gpu": load}, config=SPILL, state=state)
        assert ranking.order[0] == first
        assert ("gpu" in state.spilled) is start_spilled


@given(world=worlds(), strategy=st.sampled_from(sorted(STRATEGIES)), seed=st.integers(0, 2**32 - 1))
def test_local_only_never_yields_a_hosted_deployment(world: World, strategy: str, seed: int) -> None:
    decision = decide(
        RequestView(local_only=True),
        world.views,
        strategy=strategy,
        strategy_config=config_for(strategy),
        loads=world.loads,
        latencies=world.latencies,
        breakers=breakers_for(world),
        state=RouterState(),
        rng=random.Random(seed),
        now=NOW,
        max_attempts=8,
    )
    local = {d.name for d in world.views if d.local}
    assert set(decision.order) <= local
    assert all(e.eligible == (e.name in decision.order) for e in decision.explain)
