"""One routing decision: constraints, then the model's strategy, then unhealthy servers last.

`decide` is the only call the gateway makes per request. It is pure apart from the per-model
`RouterState` it is given (the weighted rotation and the spillover modes), and it does not reserve
breaker probes: call `BreakerRegistry.allow(name, now)` right before each attempt.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, NamedTuple, Protocol, TypeAlias, cast

from policies.candidates import Candidate, RoutePlan, Timeouts
from policies.constraints import Availability, eligible
from policies.frozen_record import FrozenRecord
from policies.observations import IDLE, DeploymentView, LatencyView, LoadView, RequestView, estimated_costs
from policies.strategies import (
    least_load,
    lowest_cost,
    lowest_latency,
    priority,
    slo_cost,
    spillover,
    weighted,
)
from policies.strategies.least_load import LeastLoadConfig
from policies.strategies.lowest_cost import LowestCostConfig
from policies.strategies.lowest_latency import LowestLatencyConfig
from policies.strategies.priority import PriorityConfig
from policies.strategies.ranking import Ranking
from policies.strategies.slo_cost import SloCostConfig
from policies.strategies.spillover import SpilloverConfig, SpilloverState
from policies.strategies.weighted import WeightedConfig, WeightedState

StrategyConfig: TypeAlias = (
    PriorityConfig
    | WeightedConfig
    | LowestCostConfig
    | LowestLatencyConfig
    | LeastLoadConfig
    | SpilloverConfig
    | SloCostConfig
)

CONFIG_TYPES: dict[str, type[StrategyConfig]] = {
    "priority": PriorityConfig,
    "weighted": WeightedConfig,
    "lowest_cost": LowestCostConfig,
    "lowest_latency": LowestLatencyConfig,
    "least_load": LeastLoadConfig,
    "spillover": SpilloverConfig,
    "slo_cost": SloCostConfig,
}
STRATEGIES = frozenset(CONFIG_TYPES)
_PRICED = frozenset({"lowest_cost", "slo_cost"})
_UNHEALTHY = "the server reports itself unhealthy: after every healthy deployment"
_NO_LOADS: Mapping[str, LoadView] = MappingProxyType({})
_NO_LATENCIES: Mapping[str, LatencyView] = MappingProxyType({})
_NO_COSTS: Mapping[str, int | None] = MappingProxyType({})


class RouterState:
    """What strategies keep between requests for one logical model. Keep one per model for the life
    of a config; a reload starts afresh. `copy()` it for a dry run that must not move the rotation."""

    __slots__ = ("spillover", "weighted")

    def __init__(self) -> None:
        self.weighted = WeightedState()
        self.spillover = SpilloverState()

    def copy(self) -> RouterState:
        twin = RouterState()
        twin.weighted = self.weighted.copy()
        twin.spillover = self.spillover.copy()
        return twin


@dataclass(frozen=True, slots=True)
class Explained:
    """One deployment in `explain`: where it ranked, or why it was excluded."""

    name: str
    position: int
    eligible: bool
    rank: int | None
    """Index in `Decision.order` (0: tried first); None when excluded."""
    score: float | None
    why: str
    """The strategy's reason for its place, or the exclusion reason."""
    reason: str | None
    """The exclusion reason; None when eligible."""


class Decision(FrozenRecord):
    """Where to send one request: `attempts` in turn (or `order` when failover may go further);
    `explain` says why, for every deployment of the model. Built per request: see `policies.frozen_record`."""

    _fields = (
        "strategy", "order", "max_attempts", "ranking", "excluded", "unhealthy", "deployments", "retry_after_s"
    )  # fmt: skip
    __slots__ = _fields
    strategy: Final[str]
    order: Final[tuple[str, ...]]
    """Every eligible deployment, best first (healthy ones before unhealthy ones)."""
    max_attempts: Final[int]
    """How many of `order` to try at most: the policy's max_attempts, capped at len(order)."""
    ranking: Final[Ranking]
    """The strategy's own ranking, before unhealthy servers were moved last."""
    excluded: Final[tuple[tuple[str, str], ...]]
    unhealthy: Final[frozenset[str]]
    deployments: Final[Sequence[DeploymentView]]
    retry_after_s: Final[float | None]
    """When `order` is empty only because of circuit breakers: seconds until one may be tried."""

    def __init__(
        self,
        *,
        strategy: str,
        order: tuple[str, ...],
        max_attempts: int,
        ranking: Ranking,
        excluded: tuple[tuple[str, str], ...],
        unhealthy: frozenset[str],
        deployments: Sequence[DeploymentView],
        retry_after_s: float | None = None,
    ) -> None:
        self.strategy = strategy
        self.order = order
        self.max_attempts = max_attempts
        self.ranking = ranking
        self.excluded = excluded
        self.unhealthy = unhealthy
        self.deployments = deployments
        self.retry_after_s = retry_after_s

    @property
    def attempts(self) -> tuple[str, ...]:
        return self.order[: self.max_attempts]

    @property
    def explain(self) -> tuple[Explained, ...]:
        """Every deployment in config order (built on demand: the request path never needs it)."""
        rank_of = {name: i for i, name in enumerate(self.order)}
        ranking = self.ranking
        noted = {n: (score, why) for n, score, why in zip(ranking.order, ranking.scores, ranking.why, strict=True)}
        reasons = dict(self.excluded)
        out = []
        for d in sorted(self.deployments, key=lambda d: d.position):
            if d.name in reasons:
                out.append(Explained(d.name, d.position, False, None, None, reasons[d.name], reasons[d.name]))
                continue
            score, why = noted.get(d.name, (None, ""))
            if d.name in self.unhealthy:
                why = f"{why}; {_UNHEALTHY}"
            out.append(Explained(d.name, d.position, True, rank_of.get(d.name), score, why, None))
        return tuple(out)

    def route_plan(self, candidates: Mapping[str, Candidate], timeouts: Timeouts) -> RoutePlan:
        """The decision as the attempt loop's `RoutePlan` (candidates by deployment name)."""
        return RoutePlan(
            order=tuple(candidates[name] for name in self.order), max_attempts=self.max_attempts, timeouts=timeouts
        )


def check_config(strategy: str, config: StrategyConfig | None) -> StrategyConfig:
    """The config to use for `strategy` (its defaults when None). Raises ValueError for an unknown
    strategy, a config of another strategy, or a missing one where there is no default (slo_cost).
    Call it at config load, so `decide` never raises for a valid config."""
    kind = CONFIG_TYPES.get(strategy)
    if kind is None:
        raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(sorted(STRATEGIES))}")
    if config is None:
        if strategy == "slo_cost":
            raise ValueError("strategy slo_cost needs a config with slo_s")
        return kind()  # type: ignore[call-arg]  # every config but slo_cost's has defaults throughout
    if type(config) is not kind:
        raise ValueError(f"strategy {strategy} takes a {kind.__name__}, not a {type(config).__name__}")
    return config


class Breakers(Availability, Protocol):
    """What `decide` needs from the circuit breakers (`BreakerRegistry` is one)."""

    def retry_in(self, name: str, now: float) -> float:
        """Seconds until deployment `name` may take a request again (0: now)."""
        ...


class _Inputs(NamedTuple):
    """Everything a strategy may read, so one call shape fits every adapter below."""

    request: RequestView
    eligible: list[DeploymentView]
    config: StrategyConfig | None
    loads: Mapping[str, LoadView]
    latencies: Mapping[str, LatencyView]
    costs: Mapping[str, int | None]
    state: RouterState | None
    rng: random.Random | None


# Adapters from `_Inputs` to each strategy's own keywords; `decide` has checked the config's type.


def _priority(i: _Inputs) -> Ranking:
    return priority.rank(i.request, i.eligible)


def _weighted(i: _Inputs) -> Ranking:
    if i.state is None:
        raise ValueError("strategy weighted needs the model's RouterState")
    return weighted.rank(i.request, i.eligible, state=i.state.weighted)


def _lowest_cost(i: _Inputs) -> Ranking:
    return lowest_cost.rank(i.request, i.eligible, costs=i.costs)


def _lowest_latency(i: _Inputs) -> Ranking:
    config = cast(LowestLatencyConfig, i.config) if i.config is not None else _LOWEST_LATENCY
    return lowest_latency.rank(i.request, i.eligible, latencies=i.latencies, loads=i.loads, config=config, rng=i.rng)


def _least_load(i: _Inputs) -> Ranking:
    return least_load.rank(i.request, i.eligible, loads=i.loads)


def _spillover(i: _Inputs) -> Ranking:
    if i.state is None:
        raise ValueError("strategy spillover needs the model's RouterState")
    config = cast(SpilloverConfig, i.config) if i.config is not None else _SPILLOVER
    return spillover.rank(i.request, i.eligible, loads=i.loads, config=config, state=i.state.spillover)


def _slo_cost(i: _Inputs) -> Ranking:
    if i.config is None:
        raise ValueError("strategy slo_cost needs a config with slo_s")
    config = cast(SloCostConfig, i.config)
    return slo_cost.rank(i.request, i.eligible, latencies=i.latencies, costs=i.costs, config=config)


_LOWEST_LATENCY = LowestLatencyConfig()
_SPILLOVER = SpilloverConfig()
_RANKERS: dict[str, Callable[[_Inputs], Ranking]] = {
    "priority": _priority,
    "weighted": _weighted,
    "lowest_cost": _lowest_cost,
    "lowest_latency": _lowest_latency,
    "least_load": _least_load,
    "spillover": _spillover,
    "slo_cost": _slo_cost,
}


def decide(
    request: RequestView,
    deployments: Sequence[DeploymentView],
    *,
    strategy: str,
    strategy_config: StrategyConfig | None = None,
    loads: Mapping[str, LoadView] = _NO_LOADS,
    latencies: Mapping[str, LatencyView] = _NO_LATENCIES,
    breakers: Breakers | None = None,
    state: RouterState | None = None,
    rng: random.Random | None = None,
    now: float,
    max_attempts: int,
    prices_at: float | None = None,
) -> Decision:
    """Rank the deployments of one logical model for one request.

    `deployments` are the model's views (built once per config); `loads` and `latencies` hold what
    is known by deployment name (a missing name: idle, unmeasured); `breakers` is usually the
    `BreakerRegistry`. `state` is required by weighted and spillover, `rng` by lowest_latency with
    exploration; `strategy_config` must be of the strategy's type (see `check_config`), None for its
    defaults. `now` is the clock the breakers are fed with (monotonic is best); `prices_at` is the
    UNIX time dated prices are read at, `now` when not given. Raises ValueError for an unknown
    strategy or a missing state, rng or config.
    """
    ranker = _RANKERS.get(strategy)
    if ranker is None:
        raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(sorted(STRATEGIES))}")
    if strategy_config is not None and type(strategy_config) is not CONFIG_TYPES[strategy]:
        raise ValueError(f"strategy {strategy} takes a {CONFIG_TYPES[strategy].__name__}")
    priced_at = now if prices_at is None else prices_at
    costs: dict[str, int | None] | None = None
    if request.price_ceiling_micro is not None:
        costs = estimated_costs(request, deployments, priced_at)
    allowed, excluded = eligible(request, deployments, breakers, now, costs=costs)
    if costs is None and strategy in _PRICED:
        costs = estimated_costs(request, allowed, priced_at)
    ranking = ranker(_Inputs(request, allowed, strategy_config, loads, latencies, costs or _NO_COSTS, state, rng))
    order = ranking.order
    unhealthy = _NONE
    if loads:
        get = loads.get
        sick = [name for name in order if not get(name, IDLE).healthy]
        if sick:
            unhealthy = frozenset(sick)
            order = tuple([n for n in order if n not in unhealthy]) + tuple(sick)
    retry_after = _retry_after(request, deployments, breakers, now) if not order and excluded else None
    return Decision(
        strategy=strategy,
        order=order,
        max_attempts=min(max_attempts, len(order)),
        ranking=ranking,
        excluded=tuple(excluded),
        unhealthy=unhealthy,
        deployments=deployments,
        retry_after_s=retry_after,
    )


_NONE: frozenset[str] = frozenset()


def _retry_after(
    request: RequestView, deployments: Sequence[DeploymentView], breakers: Breakers | None, now: float
) -> float | None:
    """Nothing is eligible: if circuit breakers alone ruled out some deployments, the seconds until
    the first of them may be tried (for a 503's Retry-After)."""
    if breakers is None:
        return None
    passing, _ = eligible(request, deployments, None, now)
    waits = [breakers.retry_in(d.name, now) for d in passing]
    return min(waits) if waits else None
