"""Real sockets: the /v2 routes and the `kind: onnx` embeddings provider mounted in a starlette app the
way the gateway mounts them, served by uvicorn on 127.0.0.1, called with httpx and the OpenAI SDK."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local_runtime import inference_routes as routes
from local_runtime.onnx_provider import OnnxConfig, OnnxProvider
from providers.base import Deadlines, Endpoint, UpstreamCall
from providers.errors import GatewayError, error_body
from tests.fixtures.local_runtime.support import IRIS, build_iris, iris_body
from tests.fixtures.local_runtime.tiny_bert import write_tiny_model


def app_for(provider: OnnxProvider) -> Starlette:
    manager = provider.manager

    def reply(result: tuple[int, dict[str, Any]]) -> JSONResponse:
        return JSONResponse(result[1], result[0])

    async def metadata(request: Request) -> JSONResponse:
        p = request.path_params
        return reply(routes.model_metadata(manager, p["name"], p.get("version")))

    async def ready(request: Request) -> JSONResponse:
        p = request.path_params
        return reply(routes.model_ready(manager, p["name"], p.get("version")))

    async def infer(request: Request) -> JSONResponse:
        p = request.path_params
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return JSONResponse({"error": "the body is not JSON"}, 400)
        return reply(await routes.infer(manager, p["name"], body, p.get("version")))

    async def reload(request: Request) -> JSONResponse:
        return reply(await routes.reload_model(manager, request.path_params["name"]))

    async def embeddings(request: Request) -> Response:
        body = orjson.loads(await request.body())
        now = asyncio.get_running_loop().time()
        call = UpstreamCall(
            Endpoint.EMBEDDINGS, body, body["model"], False, False, Deadlines(now + 5, now + 30, now + 30), "r"
        )
        try:
            completion = await provider.complete(call)
        except GatewayError as error:
            return Response(error_body(error), error.http_status, media_type="application/json")
        return Response(completion.body, media_type="application/json")

    return Starlette(
        routes=[
            Route("/v2/models/{name}", metadata),
            Route("/v2/models/{name}/versions/{version}", metadata),
            Route("/v2/models/{name}/ready", ready),
            Route("/v2/models/{name}/infer", infer, methods=["POST"]),
            Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
            Route("/admin/v1/models/{name}/reload", reload, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
        ]
    )


@pytest.fixture
async def base_url(tmp_path: Path) -> AsyncIterator[str]:
    repository = build_iris(tmp_path / "models")
    write_tiny_model(repository)
    provider = OnnxProvider("local", OnnxConfig(kind="onnx", repository=str(repository), watch_interval=None))
    await provider.start()
    server = uvicorn.Server(uvicorn.Config(app_for(provider), host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        await provider.aclose()


async def test_open_inference_protocol_over_http(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        meta = (await client.get(f"/v2/models/{IRIS}")).json()
        assert meta["parameters"]["execution_provider"] == "CPUExecutionProvider" and meta["versions"] == ["1"]
        assert (await client.get(f"/v2/models/{IRIS}/ready")).json() == {"name": IRIS, "ready": True}
        rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
        responses = await asyncio.gather(
            *(client.post(f"/v2/models/{IRIS}/versions/1/infer", json=iris_body(rows)) for _ in range(32))
        )
        for response in responses:
            assert response.status_code == 200
            labels = next(o for o in response.json()["outputs"] if o["name"] == "label")
            assert labels["data"] == ["setosa", "virginica"]
        bad = await client.post(
            f"/v2/models/{IRIS}/infer",
            json={"inputs": [{"name": "input", "shape": [1, 5], "datatype": "FP32", "data": [1] * 5}]},
        )
        assert bad.status_code == 400 and "expected shape [-1, 4]" in bad.json()["error"]
        assert (await client.post(f"/v2/models/{IRIS}/versions/7/infer", json=iris_body(rows))).status_code == 404
        reload = await client.post(f"/admin/v1/models/{IRIS}/reload")
        assert reload.status_code == 200 and reload.json()["changed"] is False


async def test_embeddings_with_the_openai_sdk(base_url: str) -> None:
    async with openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0) as client:
        texts = ["the quick brown fox", "a cat and a dog"]
        floats = await client.embeddings.create(model="tiny-bert", input=texts, encoding_format="float")
        default = await client.embeddings.create(model="tiny-bert", input=texts)  # the SDK asks for base64
        assert len(floats.data) == 2 and len(floats.data[0].embedding) == 32
        assert np.allclose(floats.data[1].embedding, default.data[1].embedding, atol=1e-6)
        assert floats.usage.prompt_tokens == default.usage.prompt_tokens > 0
        with pytest.raises(openai.BadRequestError, match="token arrays are not supported"):
            await client.embeddings.create(model="tiny-bert", input=[[1, 2, 3]])
        with pytest.raises(openai.APIStatusError) as missing:  # another deployment may have it: retryable 503
            await client.embeddings.create(model="missing", input="x")
        assert missing.value.status_code == 503
