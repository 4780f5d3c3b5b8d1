"""`POST /admin/v1/route/explain`: every candidate of a model for a described request, with its
eligibility, the reason for an exclusion, its score and the final ranking (a dry run: no rotation or
breaker state moves)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.admin_routes import credentials
from gateway.config.loader import format_path
from gateway.routing import NO_RULES
from policies.capabilities import Requirements
from policies.observations import RequestView
from providers.errors import InvalidRequest, NotFound

if TYPE_CHECKING:
    from gateway.runtime import Runtime


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    prompt_tokens: int = Field(default=0, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    tenant: str | None = None
    stream: bool = False
    tools: bool = False
    vision: bool = False
    json_mode: bool = False
    embeddings: bool = False


def route_routes(runtime: Runtime) -> list[Route]:
    async def explain(request: Request) -> Response:
        await runtime.require_admin(credentials(request))
        raw = await request.body()
        try:
            body = ExplainRequest.model_validate(orjson.loads(raw or b"{}"))
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"Malformed JSON in the request body: {exc.msg}.", code="invalid_json") from None
        except ValidationError as exc:
            error = exc.errors(include_input=False, include_url=False)[0]
            param = format_path(error["loc"]) if error["loc"] else None
            message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
            raise InvalidRequest(f"Invalid {param}: {message}.", param=param, code="invalid_value") from None
        return JSONResponse(explain_route(runtime, body))

    return [Route("/admin/v1/route/explain", explain, methods=["POST"])]


def explain_route(runtime: Runtime, body: ExplainRequest) -> dict[str, Any]:
    state = runtime.state
    route = state.models.get(body.model)
    if route is None:
        raise NotFound(f"The model '{body.model}' does not exist.", param="model", code="model_not_found")
    if body.tenant is not None:
        policy, rules = state.routing_for(body.tenant, route)
    else:
        policy, rules = route.policy, NO_RULES
    output = body.max_tokens or state.config.ledger.default_output_tokens
    needs = Requirements(
        chat=not body.embeddings,
        embeddings=body.embeddings,
        tools=body.tools,
        vision=body.vision,
        json_mode=body.json_mode,
        streaming=body.stream,
        max_output=body.max_tokens,
        prompt_bytes=body.prompt_tokens,  # tokens never outnumber bytes: a safe lower bound
    )
    request = RequestView(
        requirements=needs,
        max_output_tokens=output,
        prompt_tokens=body.prompt_tokens,
        tenant=body.tenant,
        allow=rules.allow,
        deny=rules.deny,
        local_only=rules.local_only,
        price_ceiling_micro=rules.price_ceiling_micro,
        regions=rules.regions,
    )
    router = runtime.router
    decision = router.decide(route, policy, route.state_for(policy), request, dry_run=True)
    now = time.monotonic()
    latencies = router.latency.views(now)
    loads = router.loads(route)
    wall = time.time()
    candidates = []
    for item in decision.explain:
        target = route.by_name[item.name]
        latency = latencies.get(item.name)
        load = loads.get(item.name)
        candidates.append(
            {
                "deployment": item.name,
                "position": item.position,
                "provider": target.provider_name,
                "upstream_model": target.upstream_model,
                "eligible": item.eligible,
                "rank": item.rank,
                "score": item.score,
                "why": item.why,
                "excluded_because": item.reason,
                "estimated_cost_usd": target.pricing.estimate(wall, body.prompt_tokens, output) / 1e6,
                "circuit": router.breakers.state(item.name, now),
                "in_flight": load.in_flight if load else 0,
                "queue_waiting": load.queue_waiting if load else None,
                "kv_cache_usage": load.kv_cache_usage if load else None,
                "ewma_latency_s": latency.ewma_latency_s if latency else None,
                "p95_ttft_s": latency.p95_ttft_s if latency else None,
            }
        )
    return {
        "model": route.name,
        "policy": policy.name,
        "strategy": decision.strategy,
        "tenant": body.tenant,
        "order": list(decision.order),
        "attempts": list(decision.attempts),
        "hedging": policy.hedge is not None,
        "candidates": candidates,
    }
