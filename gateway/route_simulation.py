"""Replay recorded traffic through a candidate config: what its routing would have cost and how fast it
would have been, next to what happened.

The events are the ledger's usage records (`gateway.usage_record`). They are replayed in the order the
requests started (`ts - latency_ms`), and the router is fed what it would have known at each start:

- latency: a `LatencyTracker` (the candidate's `routing.latency` settings) observes every event that had
  completed by then, on the deployment that actually served it, at its `ts`;
- load: the requests in flight on each deployment *as the candidate placed them*, each for the duration
  it actually took;
- the strategy state (`RouterState`) per model and policy, and one seeded `random.Random`;
- the request: its tenant's routing rules in the candidate config, its endpoint and `stream` flag, its
  prompt tokens and, as the output bound, its completion tokens.

Only the deployment the candidate ranks first counts (no failover is simulated). Its cost is the
request's usage rated at that deployment's price at the event's `ts`. Its latency is the request's own
when the candidate keeps it where it went; when moved, it is drawn from the latencies that deployment
showed in the traffic for the same model (exactly: the distribution is mixed in, not sampled), or
counted as unknown with fewer than `min_samples` of them. Percentiles are nearest-rank.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from gateway.state import GatewayState, ModelRoute
from gateway.traffic_sample import Traffic, TrafficEvent, collect_traffic, event_from_record
from policies.capabilities import Requirements
from policies.latency_tracker import LatencyConfig, LatencyTracker
from policies.observations import LoadView, RequestView
from policies.router import RouterState, decide
from providers.base import Endpoint, Usage

__all__ = ["Traffic", "TrafficEvent", "collect_traffic", "event_from_record", "replay"]

MIN_SAMPLES = 5
"""Latencies a deployment needs in the traffic before requests moved onto it get a latency."""
NO_DEPLOYMENT = "-"
"""The deployment of a request that failed before any deployment took it."""

_P50 = Fraction(1, 2)
_P95 = Fraction(95, 100)


@dataclass(frozen=True, slots=True)
class Share:
    deployment: str
    requests: int
    share: float
    """Of the requests counted in the outcome, 0..1."""


@dataclass(frozen=True, slots=True)
class Outcome:
    cost_micro_usd: int
    p50_ms: float | None
    p95_ms: float | None
    latency_requests: int
    """Requests behind the percentiles (successful ones with a known latency)."""
    shares: tuple[Share, ...]
    """Most requests first."""


@dataclass(frozen=True, slots=True)
class ModelReplay:
    model: str
    policy: str
    strategy: str
    requests: int
    actual: Outcome
    simulated: Outcome
    unroutable: int
    """Requests the candidate could send nowhere (every deployment excluded): no cost, no share."""
    unpriced: int
    """Requests sent to a deployment with no known price (rated at 0)."""
    latency_unknown: int
    """Successful requests moved to a deployment with too few latencies in the traffic."""

    @property
    def cost_delta_micro_usd(self) -> int:
        return self.simulated.cost_micro_usd - self.actual.cost_micro_usd

    @property
    def cost_delta_pct(self) -> float | None:
        actual = self.actual.cost_micro_usd
        return 100 * self.cost_delta_micro_usd / actual if actual else None

    @property
    def p50_delta_ms(self) -> float | None:
        return _delta(self.simulated.p50_ms, self.actual.p50_ms)

    @property
    def p95_delta_ms(self) -> float | None:
        return _delta(self.simulated.p95_ms, self.actual.p95_ms)


def _delta(simulated: float | None, actual: float | None) -> float | None:
    return simulated - actual if simulated is not None and actual is not None else None


@dataclass(frozen=True, slots=True)
class SimulationReport:
    models: tuple[ModelReplay, ...]
    """By model name."""
    skipped: tuple[tuple[str, int], ...]
    """Requests for models the candidate config does not offer, by model name."""
    malformed: int
    duplicates: int
    seed: int

    @property
    def replayed(self) -> int:
        return sum(m.requests for m in self.models)

    @property
    def skipped_requests(self) -> int:
        return sum(n for _, n in self.skipped)


class _Tally:
    """One model's running figures during the replay."""

    def __init__(self, route: ModelRoute) -> None:
        self.route = route
        self.policies: set[tuple[str, str]] = set()
        self.requests = 0
        self.actual_cost = 0
        self.actual_by: Counter[str] = Counter()
        self.simulated_cost = 0
        self.simulated_by: Counter[str] = Counter()
        self.unroutable = self.unpriced = 0
        self.kept: list[float] = []
        """Latencies of successful requests the candidate leaves where they went."""
        self.moved: Counter[str] = Counter()
        """Successful requests moved, by the deployment they were moved to."""
        self.observed: dict[str, list[float]] = {}
        """Latencies of successful requests, by the deployment that served them."""


def replay(state: GatewayState, traffic: Traffic, *, seed: int = 0, min_samples: int = MIN_SAMPLES) -> SimulationReport:
    """Route every event of `traffic` with `state` (built from the candidate config, never started)
    and sum up, per model, what happened and what the candidate would have done."""
    lt = state.config.routing.latency
    tracker = LatencyTracker(LatencyConfig(half_life_s=lt.half_life, window_size=lt.window_size, window_s=lt.window))
    rng = random.Random(seed)
    router_states: dict[tuple[str, str], RouterState] = {}
    tallies: dict[str, _Tally] = {}
    skipped: Counter[str] = Counter()
    in_flight: Counter[str] = Counter()
    # (ts, order, event, where the candidate placed it): completions not yet seen by the router
    pending: list[tuple[float, int, TrafficEvent, str | None]] = []
    for order, event in enumerate(traffic.events):
        now = event.started_at
        while pending and pending[0][0] <= now:
            _, _, done, placed = heapq.heappop(pending)
            _observe(tracker, done)
            if placed is not None:
                in_flight[placed] -= 1
        route = state.models.get(event.model)
        chosen = None
        if route is None:
            skipped[event.model] += 1
        else:
            tally = tallies.get(event.model)
            if tally is None:
                tally = tallies[event.model] = _Tally(route)
            chosen = _route_one(state, route, event, tracker, in_flight, router_states, rng, tally)
            if chosen is not None:
                in_flight[chosen] += 1
        heapq.heappush(pending, (event.ts, order, event, chosen))
    return SimulationReport(
        models=tuple(_summary(tallies[name], min_samples) for name in sorted(tallies)),
        skipped=tuple(sorted(skipped.items())),
        malformed=traffic.malformed,
        duplicates=traffic.duplicates,
        seed=seed,
    )


def _observe(tracker: LatencyTracker, event: TrafficEvent) -> None:
    """What the gateway's router learned when the request finished (see `Router.succeeded`/`failed`):
    successes and server-side failures feed the latency figures; 4xx (429 included) say nothing here."""
    if event.deployment is None or event.latency_ms is None:
        return
    if event.ok:
        ttft = event.ttft_ms / 1000 if event.ttft_ms is not None else None
        tracker.observe(event.deployment, now=event.ts, latency_s=event.latency_ms / 1000, ttft_s=ttft, ok=True)
    elif event.status >= 500:
        tracker.observe(event.deployment, now=event.ts, latency_s=event.latency_ms / 1000, ok=False)


def _requirements(event: TrafficEvent) -> Requirements:
    output = event.completion_tokens or None
    if event.endpoint == Endpoint.EMBEDDINGS.value:
        return Requirements(embeddings=True, prompt_bytes=event.prompt_tokens)
    # As `gateway.requirements`. A prompt has at least as many bytes as tokens: the context-window
    # check then counts it (exactly: `prompt_tokens` is known).
    return Requirements(chat=True, streaming=event.stream, max_output=output, prompt_bytes=event.prompt_tokens)


def _route_one(
    state: GatewayState,
    route: ModelRoute,
    event: TrafficEvent,
    tracker: LatencyTracker,
    in_flight: Mapping[str, int],
    router_states: dict[tuple[str, str], RouterState],
    rng: random.Random,
    tally: _Tally,
) -> str | None:
    policy, rules = state.routing_for(event.tenant or "", route)
    tally.policies.add((policy.name, policy.strategy))
    request = RequestView(
        requirements=_requirements(event),
        max_output_tokens=event.completion_tokens,
        prompt_tokens=event.prompt_tokens,
        tenant=event.tenant,
        allow=rules.allow,
        deny=rules.deny,
        local_only=rules.local_only,
        price_ceiling_micro=rules.price_ceiling_micro,
        regions=rules.regions,
    )
    router_state = router_states.get((route.name, policy.name))
    if router_state is None:
        router_state = router_states[(route.name, policy.name)] = RouterState()
    now = event.started_at
    loads = {t.name: LoadView(in_flight=in_flight[t.name]) for t in route.deployments if in_flight.get(t.name)}
    decision = decide(
        request,
        route.views,
        strategy=policy.strategy,
        strategy_config=policy.config,
        loads=loads,
        latencies=tracker.views(now),
        state=router_state,
        rng=rng,
        now=now,
        max_attempts=policy.max_attempts,
    )
    actual = event.deployment or NO_DEPLOYMENT
    tally.requests += 1
    tally.actual_cost += event.cost_micro_usd
    tally.actual_by[actual] += 1
    if event.ok and event.latency_ms is not None and event.deployment is not None:
        tally.observed.setdefault(event.deployment, []).append(event.latency_ms)
    if not decision.order:
        tally.unroutable += 1
        return None
    chosen = decision.order[0]
    usage = Usage(
        prompt_tokens=event.prompt_tokens,
        completion_tokens=event.completion_tokens,
        cached_tokens=event.cached_tokens,
        reasoning_tokens=event.reasoning_tokens,
        cache_write_tokens=event.cache_write_tokens,
    )
    rated = route.by_name[chosen].pricing.rate(usage, event.ts, event.images, event.audio_seconds)
    tally.simulated_cost += rated.cost
    tally.simulated_by[chosen] += 1
    if rated.version is None:
        tally.unpriced += 1
    if event.ok and event.latency_ms is not None:
        if chosen == event.deployment:
            tally.kept.append(event.latency_ms)
        else:
            tally.moved[chosen] += 1
    return chosen


def _summary(tally: _Tally, min_samples: int) -> ModelReplay:
    actual_latencies = sorted(x for xs in tally.observed.values() for x in xs)
    actual_p50, actual_p95 = _percentiles([(x, Fraction(1)) for x in actual_latencies])
    weighted: list[tuple[float, Fraction]] = [(x, Fraction(1)) for x in tally.kept]
    unknown = 0
    for deployment, moved in tally.moved.items():
        seen = tally.observed.get(deployment, [])
        if len(seen) < min_samples:
            unknown += moved
            continue
        weight = Fraction(moved, len(seen))
        weighted.extend((x, weight) for x in seen)
    weighted.sort()
    sim_p50, sim_p95 = _percentiles(weighted)
    routed = tally.requests - tally.unroutable
    names = sorted(tally.policies)
    return ModelReplay(
        model=tally.route.name,
        policy=", ".join(n for n, _ in names),
        strategy=", ".join(sorted({s for _, s in names})),
        requests=tally.requests,
        actual=Outcome(
            cost_micro_usd=tally.actual_cost,
            p50_ms=actual_p50,
            p95_ms=actual_p95,
            latency_requests=len(actual_latencies),
            shares=_shares(tally.actual_by, tally.requests),
        ),
        simulated=Outcome(
            cost_micro_usd=tally.simulated_cost,
            p50_ms=sim_p50,
            p95_ms=sim_p95,
            latency_requests=len(tally.kept) + sum(tally.moved.values()) - unknown,
            shares=_shares(tally.simulated_by, routed),
        ),
        unroutable=tally.unroutable,
        unpriced=tally.unpriced,
        latency_unknown=unknown,
    )


def _shares(counts: Counter[str], total: int) -> tuple[Share, ...]:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(Share(name, n, n / total if total else 0.0) for name, n in ordered)


def _percentiles(ordered: Sequence[tuple[float, Fraction]]) -> tuple[float | None, float | None]:
    """Nearest-rank p50 and p95 of weighted samples sorted by value: the smallest value whose
    cumulative weight reaches the share of the total (unweighted: rank ceil(q n), as the tracker's p95)."""
    if not ordered:
        return None, None
    total = sum((w for _, w in ordered), Fraction(0))
    found: list[float] = []
    cumulative = Fraction(0)
    targets = [_P50 * total, _P95 * total]
    for value, weight in ordered:
        cumulative += weight
        while targets and cumulative >= targets[0]:
            found.append(value)
            targets.pop(0)
        if not targets:
            break
    while len(found) < 2:
        found.append(ordered[-1][0])
    return found[0], found[1]
