"""What a request needs from a deployment, and the router's decision of where it goes."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from gateway.routing import RoutePolicy, Router, TenantRules
from gateway.state import ModelRoute
from policies.capabilities import Requirements
from policies.observations import RequestView
from policies.router import Decision
from providers.base import Endpoint
from providers.errors import InvalidRequest, PermissionDenied, ServiceUnavailable
from providers.usage_estimate import estimate_prompt_tokens, max_output_tokens


def requirements(endpoint: Endpoint, body: dict[str, Any], stream: bool, body_bytes: int) -> Requirements:
    if endpoint is Endpoint.EMBEDDINGS:
        return Requirements(embeddings=True, prompt_bytes=body_bytes)
    tools = bool(body.get("tools")) and body.get("tool_choice") != "none"
    response_format = body.get("response_format")
    json_mode = isinstance(response_format, dict) and response_format.get("type") in {"json_object", "json_schema"}
    max_output = body.get("max_completion_tokens") or body.get("max_tokens")
    return Requirements(
        chat=True,
        tools=tools,
        vision=endpoint is Endpoint.CHAT and _has_image(body.get("messages")),
        json_mode=json_mode,
        streaming=stream,
        max_output=max_output if isinstance(max_output, int) else None,
        prompt_bytes=body_bytes,
    )


def _has_image(messages: Any) -> bool:
    for message in messages or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") in {"image_url", "input_image", "image"}:
                    return True
    return False


_PRICED = frozenset({"lowest_cost", "slo_cost"})
"""Strategies that estimate each deployment's cost (the output bound is counted only for them)."""
_TENANT_RULES = ("deny list", "allow list", "local-only", "region", "required tag", "ceiling")


def plan_route(
    router: Router,
    route: ModelRoute,
    policy: RoutePolicy,
    rules: TenantRules,
    *,
    tenant: str,
    endpoint: Endpoint,
    body: dict[str, Any],
    needs: Requirements,
    default_output_tokens: int,
    only: Collection[str] | None = None,
) -> Decision:
    """The router's decision for one request. When nothing may serve it: a 400 when no deployment has
    the capabilities (saying why for each), a 403 when the tenant's rules exclude the rest, a 503 with
    Retry-After when only open circuits are left. `only` keeps just those deployments (an endpoint only
    some providers serve)."""
    counted: list[int] = []

    def prompt_tokens() -> int:
        if not counted:
            counted.append(estimate_prompt_tokens(endpoint, body))
        return counted[0]

    priced = policy.strategy in _PRICED or rules.price_ceiling_micro is not None
    request = RequestView(
        requirements=needs,
        max_output_tokens=max_output_tokens(endpoint, body, default_output_tokens) if priced else 0,
        count_prompt_tokens=prompt_tokens,
        tenant=tenant,
        allow=rules.allow,
        deny=rules.deny,
        local_only=rules.local_only,
        price_ceiling_micro=rules.price_ceiling_micro,
        regions=rules.regions,
    )
    decision = router.decide(route, policy, route.state_for(policy), request)
    if only is not None:
        order = tuple(name for name in decision.order if name in only)
        decision = decision.replace(order=order, max_attempts=min(decision.max_attempts, len(order)))
    if decision.order:
        return decision
    reasons = [f"{name} ({route.by_name[name].upstream_model}) {why}" for name, why in decision.excluded]
    if decision.retry_after_s is not None:
        raise ServiceUnavailable(
            f"Every deployment of model '{route.name}' that could serve this request is unavailable: "
            + "; ".join(reasons)
            + ".",
            code="no_deployment_available",
            retry_after=decision.retry_after_s,
        )
    if decision.excluded and all(any(rule in why for rule in _TENANT_RULES) for _, why in decision.excluded):
        raise PermissionDenied(
            f"No deployment of model '{route.name}' may serve tenant '{tenant}': " + "; ".join(reasons) + ".",
            code="deployment_not_allowed",
        )
    raise InvalidRequest(
        f"No deployment of model '{route.name}' can serve this request: " + "; ".join(reasons or ["none left"]) + ".",
        code="unsupported_capability",
    )
