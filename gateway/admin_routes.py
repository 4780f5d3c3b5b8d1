"""Cold routes served by starlette: health, metrics, model list, admin API."""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.config import ConfigError
from providers.base import ReportsLoad
from providers.errors import (
    GatewayError,
    InvalidRequest,
    NotFound,
    error_body,
)

if TYPE_CHECKING:
    from gateway.runtime import Runtime
    from gateway.state import ModelRoute


def credentials(request: Request) -> bytes | None:
    """The API key a cold-route request carries: `Authorization`, `x-api-key` or `api-key` header."""
    for name in ("authorization", "x-api-key", "api-key"):
        value = request.headers.get(name)
        if value:
            return value.encode()
    return None


def error_response(error: GatewayError) -> Response:
    headers = {k.decode(): v.decode() for k, v in error.headers()}
    return Response(error_body(error), status_code=error.http_status, media_type="application/json", headers=headers)


def _model_object(route: ModelRoute, created: int) -> dict[str, object]:
    return {"id": route.name, "object": "model", "created": created, "owned_by": route.owned_by}


def routes(runtime: Runtime) -> list[Route]:
    async def authenticate(request: Request) -> None:
        await runtime.authenticate(credentials(request))

    async def require_admin(request: Request) -> None:
        await runtime.require_admin(credentials(request))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks = {
            "config": runtime.started,
            "store": runtime.started and await runtime.store.ping(),
            "accepting": not runtime.draining,
        }
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
        )

    async def metrics(request: Request) -> Response:
        runtime.metrics.in_flight.set(runtime.in_flight)
        runtime.metrics.ledger_backlog.set(runtime.ledger.backlog)
        runtime.metrics.set_circuits(runtime.router.breakers.states(time.monotonic()))
        await _budget_gauges(runtime)
        runtime.metrics.set_backends(
            {name: p.load() for name, p in runtime.state.providers.items() if isinstance(p, ReportsLoad)}
        )
        return Response(runtime.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def list_models(request: Request) -> Response:
        await authenticate(request)
        state = runtime.state
        data = [_model_object(r, state.loaded_at) for r in state.models.values()]
        return JSONResponse({"object": "list", "data": data})

    async def retrieve_model(request: Request) -> Response:
        await authenticate(request)
        name = request.path_params["model"]
        route = runtime.state.models.get(name)
        if route is None:
            raise NotFound(f"The model '{name}' does not exist.", param="model", code="model_not_found")
        return JSONResponse(_model_object(route, runtime.state.loaded_at))

    async def reload_config(request: Request) -> Response:
        await require_admin(request)
        try:
            state = await runtime.reload()
        except ConfigError as exc:
            raise InvalidRequest(
                "The new configuration is invalid and was not loaded; the old one keeps serving: "
                + "; ".join(exc.problems),
                code="invalid_config",
            ) from None
        return JSONResponse({"status": "reloaded", "models": sorted(state.models)})

    async def deployments(request: Request) -> Response:
        await require_admin(request)
        data = []
        for route in runtime.state.models.values():
            for target in route.deployments:
                entry: dict[str, object] = {
                    "model": route.name,
                    "deployment": target.name,
                    "provider": target.provider_name,
                    "kind": target.provider.kind,
                    "upstream_model": target.upstream_model,
                }
                if isinstance(target.provider, ReportsLoad):
                    entry["server"] = dataclasses.asdict(target.provider.load())
                router = runtime.router
                now = time.monotonic()
                latency = router.latency.view(target.name, now)
                entry["circuit"] = router.breakers.state(target.name, now)
                entry["in_flight"] = router.in_flight.get(target.name, 0)
                entry["latency"] = dataclasses.asdict(latency)
                entry["policy"] = route.policy.name
                entry["strategy"] = route.policy.strategy
                data.append(entry)
        return JSONResponse({"object": "list", "data": data})

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", retrieve_model, methods=["GET"]),
        Route("/models", list_models, methods=["GET"]),
        Route("/admin/v1/config/reload", reload_config, methods=["POST"]),
        Route("/admin/v1/deployments", deployments, methods=["GET"]),
    ]


async def _budget_gauges(runtime: Runtime) -> None:
    """Budget utilisation per configured budget, read at scrape time (one pipelined Redis call)."""
    from gateway.budget_routes import budget_status

    gauge = runtime.metrics.budget_utilization
    try:
        status = await budget_status(runtime, None)
    except (RedisError, OSError):
        return  # the store is down: the gauges keep their last values
    gauge.clear()
    for entry in status:
        gauge.labels(entry["tenant"], entry["scope"], entry["period"]).set(entry["utilization"])
