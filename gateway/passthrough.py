"""Endpoints relayed as bytes to OpenAI-compatible upstreams, with routing, failover and accounting:
`/v1/images/generations` and `/v1/moderations` (JSON), `/v1/audio/transcriptions` and
`/v1/audio/translations` (multipart, spooled to disk, never whole in memory)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from gateway.accounting import admit
from gateway.admission_rules import NO_TICKET
from gateway.asgi_io import ClientGone, Headers, Receive, Scope, Send, header, read_body, send_error, sse_error_event
from gateway.attempts import Served
from gateway.request_lifecycle import RequestLifecycle
from gateway.requirements import plan_route
from gateway.state import DeploymentTarget
from gateway.tags import parse_tags
from gateway.upload_spool import UploadSpool
from policies.capabilities import Requirements
from providers.base import Endpoint, RawBody, RawResponse, RelaysRaw, UpstreamCall, Usage
from providers.errors import (
    GatewayError,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
    UpstreamError,
    missing_parameter,
)

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger("switchyard.passthrough")
_USAGE_PARSE_LIMIT = 1 << 20


class PassthroughEndpoint:
    def __init__(self, runtime: Runtime, endpoint: Endpoint, *, multipart: bool) -> None:
        self.runtime = runtime
        self.endpoint = endpoint
        self.multipart = multipart

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = self.runtime.request_ids.next()
        headers: Headers = [(b"x-request-id", request_id.encode())]
        self.runtime.in_flight += 1
        try:
            await self._serve(scope, receive, send, request_id, headers)
        except GatewayError as error:
            await send_error(send, error, headers)
        except ClientGone:
            pass
        except Exception:
            log.exception("unexpected error serving request %s", request_id)
            await send_error(send, GatewayError("Internal error in the gateway."), headers)
        finally:
            self.runtime.in_flight -= 1

    async def _serve(self, scope: Scope, receive: Receive, send: Send, request_id: str, headers: Headers) -> None:
        runtime = self.runtime
        if runtime.draining:
            raise ServiceUnavailable("The gateway is shutting down; retry on another replica.", code="draining")
        started = asyncio.get_running_loop().time()
        state = runtime.state
        principal = await runtime.authenticate(header(scope, b"authorization") or header(scope, b"api-key"))
        tags = parse_tags(header(scope, b"x-switchyard-tags"))
        spool: UploadSpool | None = None
        try:
            if self.multipart:
                content_type = (header(scope, b"content-type") or b"").decode("latin-1")
                directory = Path(state.config.server.data_dir) / "uploads"
                spool = await UploadSpool.receive(receive, content_type, state.config.server.max_body_bytes, directory)
                model = spool.model
                make_body = spool.body
                data: dict[str, Any] = {}
            else:
                data = _json_object(await read_body(scope, receive, state.config.server.max_body_bytes))
                field = data.get("model")
                if not isinstance(field, str) or not field:
                    raise missing_parameter("model")
                model = field
                make_body = _json_body(data)
            route = state.models.get(model)
            if route is None:
                raise NotFound(f"The model '{model}' does not exist.", param="model", code="model_not_found")
            able = {t.name for t in route.deployments if isinstance(t.provider, RelaysRaw)}
            if not able:
                raise InvalidRequest(
                    f"No deployment of model '{model}' serves /v1/{self.endpoint.value} (it needs an OpenAI-compatible"
                    " provider).",
                    code="unsupported_endpoint",
                )
            policy, rules = state.routing_for(principal.tenant, route)
            decision = plan_route(
                runtime.router,
                route,
                policy,
                rules,
                tenant=principal.tenant,
                endpoint=self.endpoint,
                body=data,
                needs=Requirements(),
                default_output_tokens=0,
                only=able,
            )
            pending = admit(runtime.admission, state, principal, route, self.endpoint, data, request_id, decision)
            ticket = NO_TICKET if pending is None else await pending
            if ticket.headers:
                headers.extend(ticket.headers)
            lifecycle = RequestLifecycle(
                runtime,
                self.endpoint,
                route,
                principal,
                request_id,
                started,
                False,
                headers,
                decision,
                policy,
                ticket,
                tags,
            )

            async def send_one(target: DeploymentTarget, call: UpstreamCall) -> RawResponse:
                provider = target.provider
                assert isinstance(provider, RelaysRaw)
                return await provider.send_raw(call, make_body(target.upstream_model))

            response, served = await lifecycle.attempts({}, False, send_one)
            await self._relay(response, served, lifecycle, send)
        finally:
            if spool is not None:
                spool.remove()

    async def _relay(self, response: RawResponse, served: Served, lifecycle: RequestLifecycle, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (b"content-type", response.content_type.encode("latin-1")),
                    *lifecycle.headers,
                    (b"x-switchyard-deployment", served.target.name.encode()),
                    (b"x-switchyard-attempts", str(served.attempts).encode()),
                ],
            }
        )
        head = bytearray()
        status, error = 200, None
        try:
            async for chunk in response:
                if len(head) < _USAGE_PARSE_LIMIT:
                    head += chunk
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError as exc:  # the body broke after the headers went out: nothing else to send
            status, error = 502, exc.code
            if response.content_type.startswith("text/event-stream"):
                await send({"type": "http.response.body", "body": sse_error_event(exc), "more_body": True})
        finally:
            await response.aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        usage = None
        if response.content_type.startswith("application/json"):
            usage = _usage(bytes(head))
            lifecycle.images, lifecycle.audio_seconds = _media(bytes(head))
        lifecycle.finish(status, served.target, served.attempts, usage, None, error)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"Malformed JSON in the request body: {exc.msg}.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return data


def _json_body(data: dict[str, Any]) -> Any:
    def make(model: str) -> RawBody:
        payload = orjson.dumps({**data, "model": model})

        async def chunks() -> AsyncIterator[bytes]:
            yield payload

        return RawBody(chunks=chunks, content_type="application/json", length=len(payload))

    return make


def _media(body: bytes) -> tuple[int, float]:
    """Images generated and seconds of audio transcribed, for per-image and per-minute prices."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return 0, 0.0
    if not isinstance(data, dict):
        return 0, 0.0
    images = data.get("data")
    count = sum(1 for item in images if isinstance(item, dict)) if isinstance(images, list) else 0
    seconds = data.get("duration")  # verbose_json transcriptions
    usage = data.get("usage")
    if isinstance(usage, dict) and usage.get("type") == "duration":  # newer transcription responses
        seconds = usage.get("seconds")
    return count, float(seconds) if isinstance(seconds, int | float) and seconds > 0 else 0.0


def _usage(body: bytes) -> Usage | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return None
    # Images and audio report input/output tokens rather than prompt/completion tokens.
    return Usage(
        prompt_tokens=int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or usage.get("output_tokens") or 0),
    )
