"""The gateway's side of routing: config mapped onto the pure `policies` values, and the process-wide
health the decisions read (circuit breakers, latency, retry budget, requests in flight).

Health lives here, not in the config snapshot, so a reload keeps what was learned about each
deployment; the per-model strategy state (weighted rotation, spillover modes) starts afresh with a new
config. Breakers and latency run on the monotonic clock; dated prices on UNIX time.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.config.routing import RoutingConfig, TenantRoutingConfig
from gateway.config.schema import PolicyConfig
from policies.candidates import Timeouts
from policies.circuit_breaker import BreakerConfig, BreakerRegistry
from policies.hedging import HedgeConfig
from policies.latency_tracker import LatencyConfig, LatencyTracker
from policies.observations import LoadView, RequestView
from policies.retry_budget import RetryBudget, RetryBudgetConfig
from policies.rolling_counts import RollingCounts
from policies.router import Decision, RouterState, StrategyConfig, check_config, decide
from policies.strategies.least_load import LeastLoadConfig
from policies.strategies.lowest_cost import LowestCostConfig
from policies.strategies.lowest_latency import LowestLatencyConfig
from policies.strategies.priority import PriorityConfig
from policies.strategies.slo_cost import SloCostConfig
from policies.strategies.spillover import SpilloverConfig, SpillThresholds
from policies.strategies.weighted import WeightedConfig
from providers.base import ReportsLoad
from providers.errors import UpstreamError, UpstreamStatusError

if TYPE_CHECKING:
    from gateway.state import ModelRoute

LOCAL_KINDS = frozenset({"vllm", "onnx", "llamacpp", "ollama", "mock"})
"""Provider kinds that run on our own hardware (the mock runs in-process) unless `local:` says otherwise."""
_LOAD_STRATEGIES = frozenset({"least_load", "spillover"})
_LATENCY_STRATEGIES = frozenset({"lowest_latency", "slo_cost"})


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """A policy as the router uses it (built once per config load)."""

    name: str
    strategy: str
    config: StrategyConfig
    max_attempts: int
    timeouts: Timeouts
    hedge: HedgeConfig | None


def route_policy(name: str, policy: PolicyConfig) -> RoutePolicy:
    """Raises ValueError for a strategy config the policies reject (reported as a config error)."""
    return RoutePolicy(
        name=name,
        strategy=policy.strategy,
        config=check_config(policy.strategy, _strategy_config(policy)),
        max_attempts=policy.max_attempts,
        timeouts=Timeouts(
            connect=policy.timeout.connect,
            first_token=policy.timeout.first_token,
            total=policy.timeout.total,
            deadline=policy.deadline,
        ),
        hedge=(
            HedgeConfig(
                min_s=policy.hedging.min_delay,
                max_s=policy.hedging.max_delay,
                default_s=policy.hedging.default_delay,
                min_samples=policy.hedging.min_samples,
                max_hedges=policy.hedging.max_hedges,
            )
            if policy.hedging.enabled
            else None
        ),
    )


def _strategy_config(policy: PolicyConfig) -> StrategyConfig:
    match policy.strategy:
        case "priority":
            return PriorityConfig()
        case "weighted":
            return WeightedConfig()
        case "lowest_cost":
            return LowestCostConfig()
        case "least_load":
            return LeastLoadConfig()
        case "lowest_latency":
            return LowestLatencyConfig(metric=policy.metric, explore_share=policy.explore_share)
        case "slo_cost":
            assert policy.slo is not None  # the schema requires it
            return SloCostConfig(slo_s=policy.slo, metric=policy.metric, min_samples=policy.slo_min_samples)
        case "spillover":
            spill = policy.spill_when
            resume = policy.resume_when
            return SpilloverConfig(
                spill_when=SpillThresholds(**spill.model_dump()) if spill else SpillThresholds(8, 0.9),
                resume_when=SpillThresholds(**resume.model_dump()) if resume else None,
            )
    raise ValueError(f"unknown strategy {policy.strategy!r}")


@dataclass(frozen=True, slots=True)
class TenantRules:
    """A tenant's routing restrictions, as frozen sets for the per-request view."""

    allow: frozenset[str] | None
    deny: frozenset[str]
    local_only: bool
    price_ceiling_micro: int | None
    regions: frozenset[str] | None
    policy: str | None


NO_RULES = TenantRules(None, frozenset(), False, None, None, None)


def tenant_rules(config: TenantRoutingConfig) -> TenantRules:
    return TenantRules(
        allow=frozenset(config.allow) if config.allow is not None else None,
        deny=frozenset(config.deny),
        local_only=config.local_only,
        price_ceiling_micro=round(config.max_price_usd * 1_000_000) if config.max_price_usd else None,
        regions=frozenset(config.regions) if config.regions is not None else None,
        policy=config.policy,
    )


class Router:
    """Process-wide health, shared by every model and kept across config reloads."""

    def __init__(
        self,
        config: RoutingConfig,
        rng: random.Random | None = None,
        on_alert: Callable[[dict[str, object]], None] | None = None,
    ) -> None:
        self.rng = rng or random.Random()
        self.in_flight: dict[str, int] = {}
        self._on_alert = on_alert
        self._failovers: dict[str, RollingCounts] = {}
        self._failover_alerted: dict[str, float] = {}
        self.configure(config)

    def configure(self, config: RoutingConfig) -> None:
        """Apply new health settings (on start and on reload; learned state restarts only if they changed)."""
        if getattr(self, "_config", None) == config:
            return
        self._config = config
        cb = config.circuit_breaker
        self.breakers = BreakerRegistry(
            BreakerConfig(
                consecutive_failures=cb.consecutive_failures,
                error_rate=cb.error_rate,
                min_requests=cb.min_requests,
                window_s=cb.window,
                base_cooldown_s=cb.cooldown,
                max_cooldown_s=max(cb.max_cooldown, cb.cooldown),
                half_open_probes=cb.half_open_probes,
            )
        )
        rb = config.retry_budget
        self.retry_budget = RetryBudget(
            RetryBudgetConfig(ratio=rb.ratio, min_retries=rb.min_retries, window_s=rb.window)
        )
        lt = config.latency
        self.latency = LatencyTracker(
            LatencyConfig(half_life_s=lt.half_life, window_size=lt.window_size, window_s=lt.window)
        )

    def decide(
        self, route: ModelRoute, policy: RoutePolicy, state: RouterState, request: RequestView, *, dry_run: bool = False
    ) -> Decision:
        now = time.monotonic()
        loads = self.loads(route) if (policy.strategy in _LOAD_STRATEGIES or route.watched) else {}
        return decide(
            request,
            route.views,
            strategy=policy.strategy,
            strategy_config=policy.config,
            loads=loads,
            latencies=self.latency.views(now) if policy.strategy in _LATENCY_STRATEGIES else {},
            breakers=self.breakers,
            state=state.copy() if dry_run else state,
            rng=self.rng,
            now=now,
            max_attempts=policy.max_attempts,
            prices_at=time.time(),
        )

    def loads(self, route: ModelRoute) -> Mapping[str, LoadView]:
        out: dict[str, LoadView] = {}
        for target in route.deployments:
            provider = target.provider
            flying = self.in_flight.get(target.name, 0)
            if isinstance(provider, ReportsLoad):
                server = provider.load()
                out[target.name] = LoadView(
                    in_flight=flying,
                    queue_waiting=server.waiting,
                    running=server.running,
                    kv_cache_usage=server.kv_cache_usage,
                    healthy=server.healthy,
                )
            elif flying:
                out[target.name] = LoadView(in_flight=flying)
        return out

    # The attempt loop reports each attempt here.

    def started(self, name: str) -> None:
        self.in_flight[name] = self.in_flight.get(name, 0) + 1

    def ended(self, name: str) -> None:
        left = self.in_flight.get(name, 1) - 1
        if left > 0:
            self.in_flight[name] = left
        else:
            self.in_flight.pop(name, None)

    def succeeded(self, name: str, latency_s: float, ttft_s: float | None) -> None:
        now = time.monotonic()
        self.breakers.record(name, now, True)
        self.latency.observe(name, now=now, latency_s=latency_s, ttft_s=ttft_s, ok=True)

    def failed(self, name: str, error: UpstreamError, elapsed_s: float) -> None:
        """Health failures (connect, timeout, 5xx, broken stream) count against the breaker; a 429 cools
        the deployment down for its Retry-After; a 4xx says nothing about its health."""
        now = time.monotonic()
        status = error.upstream_status if isinstance(error, UpstreamStatusError) else None
        if status == 429:
            self.breakers.cool_down(name, now, error.retry_after or 1.0)
        elif error.retryable:
            was_open = self.breakers.state(name, now) == "open"
            self.breakers.record(name, now, False)
            self.latency.observe(name, now=now, latency_s=elapsed_s, ok=False)
            if not was_open and self.breakers.state(name, now) == "open" and self._on_alert is not None:
                self._on_alert(
                    {"type": "circuit_open", "deployment": name, "error": error.code or type(error).__name__}
                )
        else:
            self.breakers.release(name, now)

    def served(self, model: str, failed_over: bool) -> None:
        """Count a request of `model`; alert once per window when failovers pass the threshold."""
        alerts = self._config.alerts
        now = time.monotonic()
        counts = self._failovers.get(model)
        if counts is None:
            counts = self._failovers[model] = RollingCounts(alerts.failover_window)
        counts.add(now, 1, 1 if failed_over else 0)
        if not failed_over or self._on_alert is None:
            return
        requests, failovers = counts.totals(now)
        if requests < alerts.failover_min_requests or failovers / requests < alerts.failover_rate:
            return
        if now - self._failover_alerted.get(model, -math.inf) < alerts.failover_window:
            return
        self._failover_alerted[model] = now
        self._on_alert(
            {
                "type": "failover_rate",
                "model": model,
                "requests": requests,
                "failovers": failovers,
                "window_s": alerts.failover_window,
            }
        )
