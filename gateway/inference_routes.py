"""The KServe / Triton Open Inference Protocol v2 for local ONNX models, and their reload.

`GET /v2/health/ready`, `GET /v2/models/<name>[/versions/<v>]`, `GET .../ready`,
`POST /v2/models/<name>[/versions/<v>]/infer` take any gateway key (tenant or admin);
`POST /admin/v1/models/<name>/reload` the admin key. Errors use the protocol's `{"error": "..."}`.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.admin_routes import credentials
from gateway.auth import Principal
from gateway.usage_record import UsageRecord
from local_runtime import inference_routes as oip
from local_runtime.model_manager import ModelManager
from local_runtime.onnx_provider import OnnxProvider

if TYPE_CHECKING:
    from gateway.runtime import Runtime


def inference_routes(runtime: Runtime) -> list[Route]:
    def managers() -> list[ModelManager]:
        return [p.manager for p in runtime.state.providers.values() if isinstance(p, OnnxProvider)]

    def reply(result: tuple[int, dict[str, Any]]) -> JSONResponse:
        return JSONResponse(result[1], result[0])

    def find(name: str) -> ModelManager | None:
        return oip.manager_for(managers(), name)

    async def server_ready(request: Request) -> JSONResponse:
        await runtime.authenticate(credentials(request))
        return reply(oip.server_ready(managers()))

    async def metadata(request: Request) -> JSONResponse:
        await runtime.authenticate(credentials(request))
        p = request.path_params
        manager = find(p["name"])
        if manager is None:
            return JSONResponse({"error": f"unknown model {p['name']!r}"}, 404)
        return reply(oip.model_metadata(manager, p["name"], p.get("version")))

    async def ready(request: Request) -> JSONResponse:
        await runtime.authenticate(credentials(request))
        p = request.path_params
        manager = find(p["name"])
        if manager is None:
            return JSONResponse({"name": p["name"], "ready": False, "error": "unknown model"}, 404)
        return reply(oip.model_ready(manager, p["name"], p.get("version")))

    async def infer(request: Request) -> JSONResponse:
        principal = await runtime.authenticate(credentials(request))
        p = request.path_params
        manager = find(p["name"])
        if manager is None:
            return JSONResponse({"error": f"unknown model {p['name']!r}"}, 404)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return JSONResponse({"error": f"the body is not JSON: {exc.msg}"}, 400)
        started = time.perf_counter()
        status, answer = await oip.infer(manager, p["name"], body, p.get("version"))
        if status < 400:  # bad input leaves no usage record, as on every other route
            provider = next(n for n, pr in runtime.state.providers.items() if getattr(pr, "manager", None) is manager)
            runtime.ledger.record(_usage(principal, provider, p["name"], status, time.perf_counter() - started))
        return JSONResponse(answer, status)

    async def reload(request: Request) -> JSONResponse:
        await runtime.require_admin(credentials(request))
        manager = find(request.path_params["name"])
        if manager is None:
            return JSONResponse({"error": f"unknown model {request.path_params['name']!r}"}, 404)
        return reply(await oip.reload_model(manager, request.path_params["name"]))

    return [
        Route("/v2/health/ready", server_ready, methods=["GET"]),
        Route("/v2/models/{name}", metadata, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}", metadata, methods=["GET"]),
        Route("/v2/models/{name}/ready", ready, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}/ready", ready, methods=["GET"]),
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
        Route("/admin/v1/models/{name}/reload", reload, methods=["POST"]),
    ]


def _usage(principal: Principal, provider: str, model: str, status: int, seconds: float) -> UsageRecord:
    """An inference on a local model: attributed and counted like any request (no tokens, no price)."""
    return UsageRecord(
        request_id=os.urandom(12).hex(),
        ts=time.time(),
        tenant=principal.tenant,
        team=principal.team,
        project=principal.project,
        key_id=principal.key_id,
        endpoint="v2/infer",
        model=model,
        deployment=f"{provider}/{model}",
        provider=provider,
        provider_kind="onnx",
        upstream_model=model,
        status=status,
        stream=False,
        attempts=1,
        prompt_tokens=0,
        completion_tokens=0,
        cached_tokens=0,
        reasoning_tokens=0,
        estimated=False,
        latency_ms=round(seconds * 1000, 3),
        ttft_ms=None,
        error=None,
    )
