"""Per request: what admission must check before the call, and the usage record after it."""

from __future__ import annotations

import time
from collections.abc import Coroutine, Sequence
from typing import Any

from gateway.admission import Admission
from gateway.admission_rules import Ticket
from gateway.auth import Principal
from gateway.state import DeploymentTarget, GatewayState, ModelRoute
from gateway.usage_record import UsageRecord, record_of
from policies.router import Decision
from providers.base import Endpoint, Usage
from providers.usage_estimate import estimate_prompt_tokens, max_output_tokens, usage_from_completion, usage_from_stream

_HOLD_GRACE = 60.0
"""A reservation outlives the request's deadline by this much before it counts as abandoned."""


def admit(
    admission: Admission,
    state: GatewayState,
    principal: Principal,
    route: ModelRoute,
    endpoint: Endpoint,
    body: dict[str, Any],
    request_id: str,
    decision: Decision,
) -> Coroutine[Any, Any, Ticket] | None:
    """The call that charges the tenant's, team's and key's limits and reserves against their budgets
    (at most one Redis call), for the caller to await; None when none applies (no call at all).

    Not a coroutine itself, so that this module has none and compiles (scripts/build_native.py)."""
    if principal.is_admin:
        return None
    plan = admission.plan(principal, state.config.tenants.get(principal.tenant), route.name, time.time())
    rules = plan.rules
    if rules.empty:
        return None
    prompt = output = cost = 0
    if rules.needs_tokens:
        prompt = estimate_prompt_tokens(endpoint, body)
        output = max_output_tokens(endpoint, body, state.config.ledger.default_output_tokens)
        if rules.budgets:
            now = time.time()
            # The dearest deployment that may serve it: failover must not outrun the reservation.
            by_name = route.by_name
            cost = max((by_name[n].pricing.estimate(now, prompt, output) for n in decision.attempts), default=0)
    return admission.admit(
        plan,
        request_id=request_id,
        estimated_tokens=prompt + output,
        estimated_cost=cost,
        hold_seconds=route.policy.timeouts.deadline + _HOLD_GRACE,
    )


def settled_usage(
    usage: Usage | None,
    status: int,
    endpoint: Endpoint,
    body: dict[str, Any] | None,
    completion: bytes | None = None,
    relayed: Sequence[bytes] = (),
) -> Usage:
    """The upstream's own usage; where it gave none, a tiktoken count of what was sent and received,
    marked estimated (a stream cut short or left by its client is billed for what was streamed)."""
    if usage is not None:
        return usage
    if body is None or (status >= 400 and not relayed):
        return Usage()
    prompt = estimate_prompt_tokens(endpoint, body)
    if completion is not None:
        return usage_from_completion(completion, prompt)
    if relayed:
        return usage_from_stream(relayed, prompt)
    return Usage()


def usage_record(
    *,
    request_id: str,
    principal: Principal,
    tags: dict[str, str],
    endpoint: Endpoint,
    route: ModelRoute,
    target: DeploymentTarget | None,
    status: int,
    stream: bool,
    attempts: int,
    usage: Usage,
    duration: float,
    ttft: float | None,
    error: str | None,
    images: int = 0,
    audio_seconds: float = 0.0,
) -> UsageRecord:
    now = time.time()
    rated = target.pricing.rate(usage, now, images, audio_seconds) if target is not None else None
    # Every field, in the dataclass's order (`record_of`; tests/unit/test_usage_record.py checks both).
    # Milliseconds to the microsecond as whole microseconds / 1e3: `round(x, 3)` goes through a decimal
    # string (~2,000 instructions a call); the two differ only for a product within an ulp of a half.
    return record_of(
        {
            "request_id": request_id,
            "ts": now,
            "tenant": principal.tenant,
            "team": principal.team,
            "key_id": principal.key_id,
            "endpoint": endpoint.value,
            "model": route.name,
            "deployment": target.name if target is not None else None,
            "status": status,
            "stream": stream,
            "attempts": attempts,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cached_tokens": usage.cached_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "estimated": usage.estimated,
            "latency_ms": round(duration * 1e6) / 1e3,
            "ttft_ms": round(ttft * 1e6) / 1e3 if ttft is not None else None,
            "error": error,
            "project": principal.project,
            "tags": tags,
            "provider": target.provider_name if target is not None else None,
            "provider_kind": target.provider.kind if target is not None else None,
            "upstream_model": target.upstream_model if target is not None else None,
            "cache_write_tokens": usage.cache_write_tokens,
            "images": images,
            "audio_seconds": audio_seconds,
            "cost_micro_usd": rated.cost if rated is not None else 0,
            "list_cost_micro_usd": rated.list_cost if rated is not None else 0,
            "price_version": rated.version if rated is not None else None,
            "currency": "USD",
        }
    )
