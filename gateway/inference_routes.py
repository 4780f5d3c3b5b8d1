"""The KServe / Triton Open Inference Protocol v2 for local ONNX models, and their reload.

`GET /v2/health/ready`, `GET /v2/models/<name>[/versions/<v>]`, `GET .../ready`,
`POST /v2/models/<name>[/versions/<v>]/infer` take any gateway key (tenant or admin);
`POST /admin/v1/models/<name>/reload` the admin key. Errors use the protocol's `{"error": "..."}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.admin_routes import credentials
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
        await runtime.authenticate(credentials(request))
        p = request.path_params
        manager = find(p["name"])
        if manager is None:
            return JSONResponse({"error": f"unknown model {p['name']!r}"}, 404)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return JSONResponse({"error": f"the body is not JSON: {exc.msg}"}, 400)
        return reply(await oip.infer(manager, p["name"], body, p.get("version")))

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
