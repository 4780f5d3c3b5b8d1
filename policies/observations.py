"""What routing sees: a deployment, its load, its recent latency, and the request, as plain frozen values.

The gateway builds `DeploymentView`s once per config load (they do not change per request), keeps one
`LoadView` per deployment that it replaces when its in-flight count or a server's scrape changes, and
takes `LatencyView`s from `policies.latency_tracker`. Only the `RequestView` is built per request.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from policies.capabilities import UNKNOWN, Capabilities, Requirements
from policies.frozen_record import FrozenRecord
from policies.pricing import TOKENS_PER_RATE, PriceSchedule

CAPABILITY_FLAGS = ("chat", "embeddings", "tools", "vision", "json_mode", "streaming")


@dataclass(frozen=True, slots=True)
class DeploymentView:
    """One deployment of a logical model, as routing sees it."""

    name: str
    position: int
    """Order in the config's deployment list (0 first)."""
    provider: str
    """The config's provider name (`gpu-1`, `openai`): tenant allow/deny lists may name it."""
    provider_kind: str
    """The wire format (`vllm`, `openai`, `anthropic`, …): allow/deny lists may name it too."""
    local: bool = False
    """Runs on our own hardware (vLLM, ONNX Runtime); False for hosted APIs."""
    weight: float = 1.0
    """For `weighted`: share of traffic relative to the others; 0 takes traffic only as a fallback."""
    tags: frozenset[str] = frozenset()
    region: str | None = None
    capabilities: Capabilities = UNKNOWN
    prices: PriceSchedule | None = None
    """The price schedule in force (its own `price:` or the catalog's); None: unknown price."""
    estimated_cost_micro: int | None = None
    """A cost for this request computed by the caller; when set it is used instead of `prices`."""
    lacks: frozenset[str] = field(init=False, repr=False, compare=False)
    """Derived: the capability flags `capabilities` rules out (`chat`, `tools`, …)."""
    rate_steps: tuple[tuple[float, int, int], ...] = field(init=False, repr=False, compare=False)
    """Derived from `prices`, latest first: (effective from, dearest input rate, dearest output rate),
    the rates `policies.pricing.estimate_cost_micro_usd` bounds a request's cost with."""

    def __post_init__(self) -> None:
        if not self.weight >= 0:  # also rejects NaN
            raise ValueError(f"{self.name}: weight must be a non-negative number, not {self.weight!r}")
        # Derived once per config load, so the per-request checks are set and integer operations.
        caps = self.capabilities
        object.__setattr__(self, "lacks", frozenset(f for f in CAPABILITY_FLAGS if getattr(caps, f) is False))
        steps = tuple(
            (
                -math.inf if price.effective_from is None else price.effective_from,
                max(price.input, price.cached_input_rate, price.cache_write_rate),
                max(price.output, price.reasoning_rate),
            )
            for price in reversed(self.prices.prices if self.prices is not None else ())
        )
        object.__setattr__(self, "rate_steps", steps)


@dataclass(frozen=True, slots=True)
class LoadView:
    """Load on one deployment right now. `None` means the server does not report that figure."""

    in_flight: int = 0
    """Requests this gateway process has sent there and not yet finished."""
    queue_waiting: float | None = None
    """Requests queued on the server (vLLM `num_requests_waiting`)."""
    running: float | None = None
    """Requests being generated on the server (vLLM `num_requests_running`)."""
    kv_cache_usage: float | None = None
    """Fraction of the KV cache in use, 0..1."""
    healthy: bool = True
    """False when the server's own health check fails: ranked after healthy ones, never excluded."""


IDLE = LoadView()
"""What routing assumes for a deployment it has no `LoadView` for."""


@dataclass(frozen=True, slots=True)
class LatencyView:
    """Recent latency of one deployment, in seconds. `None`: no successful sample yet."""

    ewma_latency_s: float | None = None
    ewma_ttft_s: float | None = None
    p95_latency_s: float | None = None
    p95_ttft_s: float | None = None
    samples: int = 0
    """Successful samples in the p95 window."""
    error_rate: float | None = None
    """Time-decayed share of failed attempts, 0..1; None before the first attempt."""


NO_LATENCY = LatencyView()


NO_REQUIREMENTS = Requirements()
_NO_NAMES: frozenset[str] = frozenset()


class RequestView(FrozenRecord):
    """One request as routing sees it (built per request: see `policies.frozen_record`)."""

    _fields = (
        "requirements",
        "max_output_tokens",
        "prompt_tokens",
        "count_prompt_tokens",
        "tenant",
        "allow",
        "deny",
        "local_only",
        "price_ceiling_micro",
        "regions",
        "required_tags",
    )
    __slots__ = _fields
    requirements: Final[Requirements]
    max_output_tokens: Final[int]
    """The output bound used for cost estimates (the request's `max_tokens`, else the config default)."""
    prompt_tokens: Final[int | None]
    """Prompt tokens when already counted; None: `count_prompt_tokens` counts them when needed."""
    count_prompt_tokens: Final[Callable[[], int] | None]
    """Counts prompt tokens on demand (it should cache: it may be called more than once)."""
    tenant: Final[str | None]
    allow: Final[frozenset[str] | None]
    """Deployment, provider or provider-kind names the tenant may use; None: all."""
    deny: Final[frozenset[str]]
    """Deployment, provider or provider-kind names the tenant must not use; wins over `allow`."""
    local_only: Final[bool]
    """Never send this request outside our own deployments (data must not leave)."""
    price_ceiling_micro: Final[int | None]
    """The most this request may cost (micro-USD); deployments estimated above it are excluded."""
    regions: Final[frozenset[str] | None]
    """Regions the request may be served in (data residency); None: any, including unknown."""
    required_tags: Final[frozenset[str]]
    """Tags a deployment must all carry."""

    def __init__(
        self,
        *,
        requirements: Requirements = NO_REQUIREMENTS,
        max_output_tokens: int = 0,
        prompt_tokens: int | None = None,
        count_prompt_tokens: Callable[[], int] | None = None,
        tenant: str | None = None,
        allow: frozenset[str] | None = None,
        deny: frozenset[str] = _NO_NAMES,
        local_only: bool = False,
        price_ceiling_micro: int | None = None,
        regions: frozenset[str] | None = None,
        required_tags: frozenset[str] = _NO_NAMES,
    ) -> None:
        self.requirements = requirements
        self.max_output_tokens = max_output_tokens
        self.prompt_tokens = prompt_tokens
        self.count_prompt_tokens = count_prompt_tokens
        self.tenant = tenant
        self.allow = allow
        self.deny = deny
        self.local_only = local_only
        self.price_ceiling_micro = price_ceiling_micro
        self.regions = regions
        self.required_tags = required_tags

    @property
    def stream(self) -> bool:
        return self.requirements.streaming

    def resolved_prompt_tokens(self) -> int:
        """`prompt_tokens`, else the counter's answer, else 0 (nothing known)."""
        if self.prompt_tokens is not None:
            return self.prompt_tokens
        if self.count_prompt_tokens is not None:
            return self.count_prompt_tokens()
        return 0


def estimated_cost(deployment: DeploymentView, request: RequestView, now: float) -> int | None:
    """The upper-bound cost of `request` on `deployment` in micro-USD at the prices in force at `now`,
    exactly `policies.pricing.estimate_cost_micro_usd`; None when its price is unknown (or not yet in
    force). A caller-supplied `estimated_cost_micro` wins."""
    return estimated_costs(request, (deployment,), now)[deployment.name]


def estimated_costs(request: RequestView, deployments: Sequence[DeploymentView], now: float) -> dict[str, int | None]:
    """`estimated_cost` of every deployment, by name, with the prompt resolved once."""
    prompt = max(request.resolved_prompt_tokens(), 0)
    output = max(request.max_output_tokens, 0)
    costs: dict[str, int | None] = {}
    for d in deployments:
        cost = d.estimated_cost_micro
        if cost is None:
            for start, input_rate, output_rate in d.rate_steps:
                if start <= now:
                    cost = -(-(prompt * input_rate + output * output_rate) // TOKENS_PER_RATE)
                    break
        costs[d.name] = cost
    return costs
