"""Config schema for routing: strategies, hedging, circuit breakers, retry budget, tenant routing rules.

Mapped onto the pure `policies` values by `gateway/routing.py`; durations accept `500ms`, `2s`, `1m`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from providers.base import Duration

Strategy = Literal["priority", "weighted", "lowest_cost", "lowest_latency", "least_load", "spillover", "slo_cost"]
Metric = Literal["auto", "ttft", "total"]
Fraction = Annotated[float, Field(ge=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SpillThresholdsConfig(_Strict):
    queue_waiting: Annotated[float, Field(ge=0)] | None = None
    """Requests waiting in the server's queue (vLLM `num_requests_waiting`)."""
    kv_cache_usage: Fraction | None = None
    in_flight: Annotated[float, Field(ge=0)] | None = None
    """This gateway's requests in flight (for local runtimes that report no queue)."""


class HedgingConfig(_Strict):
    """Opt-in: after the deployment's recent p95 time to first token without a first byte, send the
    same request to the next candidate too and keep whichever answers first."""

    enabled: bool = False
    min_delay: Duration = 0.25
    max_delay: Duration = 10.0
    default_delay: Duration = 2.0
    """While the deployment has fewer than `min_samples` recent samples."""
    min_samples: int = Field(default=20, ge=1)
    max_hedges: int = Field(default=1, ge=1, le=3)


class CircuitBreakerConfig(_Strict):
    consecutive_failures: int = Field(default=5, ge=1)
    error_rate: Annotated[float, Field(gt=0, le=1)] = 0.5
    min_requests: int = Field(default=20, ge=1)
    window: Duration = 30.0
    cooldown: Duration = 30.0
    max_cooldown: Duration = 300.0
    half_open_probes: int = Field(default=1, ge=1)


class RetryBudgetModel(_Strict):
    """Failover attempts and hedges limited to a share of recent requests (Finagle's retry budget:
    20% of the window's requests, and at least 10 retries a second so light traffic can always retry)."""

    ratio: Annotated[float, Field(ge=0)] = 0.2
    min_retries: int = Field(default=100, ge=0, description="Retries always allowed per window.")
    window: Duration = 10.0


class LatencyTrackingConfig(_Strict):
    half_life: Duration = 30.0
    window_size: int = Field(default=128, ge=1)
    window: Duration = 300.0


class RoutingAlertsConfig(_Strict):
    """When a model's failover share is sustained this high, alert (once per window)."""

    failover_rate: Fraction = 0.2
    failover_window: Duration = 300.0
    failover_min_requests: int = Field(default=20, ge=1)


class RoutingConfig(_Strict):
    """Process-wide health tracking, shared by every model."""

    alerts: RoutingAlertsConfig = Field(default_factory=RoutingAlertsConfig)
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    retry_budget: RetryBudgetModel = Field(default_factory=RetryBudgetModel)
    latency: LatencyTrackingConfig = Field(default_factory=LatencyTrackingConfig)


class TenantRoutingConfig(_Strict):
    policy: str | None = Field(default=None, min_length=1)
    """A policy that replaces every model's own for this tenant."""
    allow: tuple[str, ...] | None = None
    """Deployment, provider or provider-kind names this tenant may use; absent: all."""
    deny: tuple[str, ...] = ()
    local_only: bool = False
    """Data never leaves own deployments (vLLM, ONNX, llama.cpp, Ollama, or `local: true`)."""
    max_price_usd: Annotated[float, Field(gt=0)] | None = None
    """The most one request may be estimated to cost; dearer deployments are skipped."""
    regions: tuple[str, ...] | None = None
    """Only deployments in these regions (deployments of unknown region are skipped)."""
