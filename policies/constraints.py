"""Which deployments may serve a request at all, and why each other one may not.

Hard rules only: a deployment excluded here is never tried for the request. Soft preferences
(an unhealthy server, a loaded GPU) are the strategies' business: they rank, they do not exclude.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from policies.capabilities import Requirements, unmet
from policies.observations import CAPABILITY_FLAGS, DeploymentView, RequestView, estimated_costs


class Availability(Protocol):
    """What constraints need from the circuit breakers (`BreakerRegistry` is one)."""

    def exclusions(self, now: float) -> Mapping[str, str]:
        """The deployments that cannot take a request at `now`, with the reason for each."""
        ...


def eligible(
    request: RequestView,
    deployments: Sequence[DeploymentView],
    breakers: Availability | None,
    now: float,
    *,
    costs: Mapping[str, int | None] | None = None,
    prices_at: float | None = None,
) -> tuple[list[DeploymentView], list[tuple[str, str]]]:
    """Split `deployments` into those that may serve `request` (in the given order) and the excluded
    ones as (name, reason) with the first rule each breaks, in English, meant to follow the name.

    Rules, in order: tenant deny list (wins over the allow list), tenant allow list (names match a
    deployment, a provider or a provider kind), `local_only`, regions, required tags, capabilities and
    context window (`policies.capabilities.unmet`), the price ceiling (a deployment of unknown price is
    not excluded: unknown never excludes, as with capabilities), then circuit breakers (open, cooling
    down after a 429, or half-open with every probe slot taken). `costs` are per-request cost
    estimates by name; when absent and a ceiling is set they are computed from each view's prices
    as of `prices_at` (UNIX time; default `now`). `now` is the breakers' clock.
    """
    allowed: list[DeploymentView] = []
    excluded: list[tuple[str, str]] = []
    needs = request.requirements
    flags: frozenset[str] | None = None  # what the request needs, worked out for the first deployment that lacks some
    max_output = needs.max_output
    least_tokens = needs.prompt_bytes + (max_output or 0)
    deny = request.deny
    allow = request.allow
    local_only = request.local_only
    regions = request.regions
    tags = request.required_tags
    ceiling = request.price_ceiling_micro
    blocked = breakers.exclusions(now) if breakers is not None else None
    for d in deployments:
        name = d.name
        if deny and (name in deny or d.provider in deny or d.provider_kind in deny):
            excluded.append((name, "is on the tenant's deny list"))
            continue
        if allow is not None and not (name in allow or d.provider in allow or d.provider_kind in allow):
            excluded.append((name, "is not on the tenant's allow list"))
            continue
        if local_only and not d.local:
            excluded.append((name, "is hosted outside our own deployments, and the request is local-only"))
            continue
        if regions is not None and d.region not in regions:
            where = "has no known region" if d.region is None else f"is in region {d.region}"
            excluded.append((name, f"{where}; the request may only be served in {', '.join(sorted(regions))}"))
            continue
        if tags and not tags <= d.tags:
            excluded.append((name, f"lacks the required tag(s) {', '.join(sorted(tags - d.tags))}"))
            continue
        lacks = d.lacks
        caps = d.capabilities
        # A cheap test that holds whenever `unmet` could object (and sometimes when it would not),
        # so most deployments never reach `unmet`.
        lacking = False
        if lacks:
            if flags is None:
                flags = _needed(needs)
            lacking = not lacks.isdisjoint(flags)
        if (
            lacking
            or (max_output is not None and caps.max_output is not None and max_output > caps.max_output)
            or (caps.context_window is not None and least_tokens > caps.context_window)
        ):
            reason = unmet(caps, needs, request.resolved_prompt_tokens)
            if reason is not None:
                excluded.append((name, reason))
                continue
        if ceiling is not None:
            if costs is None:
                costs = estimated_costs(request, deployments, now if prices_at is None else prices_at)
            cost = costs.get(name)
            if cost is not None and cost > ceiling:
                excluded.append((name, f"would cost up to {cost} micro-USD, above the ceiling of {ceiling}"))
                continue
        if blocked:
            reason = blocked.get(name)
            if reason is not None:
                excluded.append((name, reason))
                continue
        allowed.append(d)
    return allowed, excluded


def _needed(needs: Requirements) -> frozenset[str]:
    return frozenset(flag for flag in CAPABILITY_FLAGS if getattr(needs, flag))
