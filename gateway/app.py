"""The ASGI application: the hot path routed on `scope["path"]` first, starlette for the rest."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.admin_routes import error_response, routes
from gateway.asgi_io import Receive, Scope, Send, send_error
from gateway.budget_routes import budget_routes
from gateway.client_wire import AnthropicWire, OpenAIWire, ResponsesWire
from gateway.config import GatewayConfig
from gateway.cost_routes import cost_routes
from gateway.dashboard import dashboard_routes
from gateway.inference_routes import inference_routes
from gateway.key_routes import key_routes
from gateway.passthrough import PassthroughEndpoint
from gateway.proxy import ProxyEndpoint
from gateway.route_routes import route_routes
from gateway.runtime import Runtime
from gateway.settings import Settings
from providers.base import Endpoint
from providers.errors import GatewayError, MethodNotAllowed, NotFound
from providers.idle_work import idle_work

log = logging.getLogger("switchyard")


class SwitchyardApp:
    def __init__(self, settings: Settings, config: GatewayConfig | None = None, span_exporter: Any = None) -> None:
        self.runtime = Runtime(settings, config, span_exporter)
        chat = ProxyEndpoint(self.runtime, Endpoint.CHAT, OpenAIWire("chat"))
        completions = ProxyEndpoint(self.runtime, Endpoint.COMPLETIONS, OpenAIWire("completions"))
        embeddings = ProxyEndpoint(self.runtime, Endpoint.EMBEDDINGS, OpenAIWire("embeddings"))
        messages = ProxyEndpoint(self.runtime, Endpoint.CHAT, AnthropicWire())
        responses = ProxyEndpoint(self.runtime, Endpoint.CHAT, ResponsesWire())
        self.hot: dict[str, ProxyEndpoint | PassthroughEndpoint] = {
            "/v1/chat/completions": chat,
            "/v1/completions": completions,
            "/v1/embeddings": embeddings,
            "/chat/completions": chat,
            "/completions": completions,
            "/embeddings": embeddings,
            "/v1/messages": messages,
            "/v1/responses": responses,
            "/responses": responses,
        }
        for endpoint, multipart in (
            (Endpoint.IMAGES, False),
            (Endpoint.MODERATIONS, False),
            (Endpoint.TRANSCRIPTIONS, True),
            (Endpoint.TRANSLATIONS, True),
        ):
            self.hot[f"/v1/{endpoint.value}"] = PassthroughEndpoint(self.runtime, endpoint, multipart=multipart)
        self.cold = Starlette(
            routes=[
                *routes(self.runtime),
                *key_routes(self.runtime),
                *budget_routes(self.runtime),
                *cost_routes(self.runtime),
                *route_routes(self.runtime),
                *inference_routes(self.runtime),
                *dashboard_routes(),
            ],
            lifespan=self.runtime.lifespan,
            exception_handlers={
                GatewayError: _gateway_error,
                HTTPException: _http_error,
                Exception: _unexpected_error,
            },
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = self.hot.get(scope["path"])
            if handler is not None:
                if scope["method"] == "POST":
                    await handler(scope, receive, send)
                else:
                    await send_error(send, MethodNotAllowed(f"Use POST for {scope['path']}."), [(b"allow", b"POST")])
                return
            # Reads of the gateway's figures (/metrics, the admin API) see every request answered before.
            idle_work.run()
        await self.cold(scope, receive, send)


def create_app(settings: Settings, config: GatewayConfig | None = None, span_exporter: Any = None) -> SwitchyardApp:
    return SwitchyardApp(settings, config, span_exporter)


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFound(f"Unknown route {request.method} {request.url.path}.", code="unknown_route"))
    body = {"error": {"message": str(exc.detail), "type": "invalid_request_error", "param": None, "code": None}}
    return Response(orjson.dumps(body), status_code=exc.status_code, media_type="application/json")


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(GatewayError("Internal error in the gateway."))
