"""The hot path: raw ASGI handlers for /v1/chat/completions, /v1/completions and /v1/embeddings.

One handler per request: authenticate, read and validate the body, pick the route, run the attempt
loop, then send the upstream's bytes (or relay its stream) with ASGI `send()` directly. Accounting
(metrics, usage record) happens after the last byte and never waits on I/O.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import orjson

from gateway.accounting import admit
from gateway.admission_rules import NO_TICKET
from gateway.asgi_io import (
    JSON,
    ClientGone,
    Headers,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    send_bytes,
    send_error,
)
from gateway.client_wire import ClientWire
from gateway.request_lifecycle import RequestLifecycle, served_headers
from gateway.requirements import plan_route, requirements
from gateway.state import DeploymentTarget, GatewayState
from gateway.tags import parse_tags
from providers.base import Completion, Endpoint, UpstreamCall
from providers.errors import (
    GatewayError,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
)

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger("switchyard.proxy")


class ProxyEndpoint:
    def __init__(self, runtime: Runtime, endpoint: Endpoint, wire: ClientWire) -> None:
        self.runtime = runtime
        self.endpoint = endpoint
        self.wire = wire
        self.streamable = endpoint is not Endpoint.EMBEDDINGS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime
        request_id = runtime.request_ids.next()
        headers: Headers = [(b"x-request-id", request_id.encode())]
        runtime.in_flight += 1
        try:
            await self._serve(scope, receive, send, request_id, headers)
        except GatewayError as error:
            await send_error(send, error, headers, self.wire.error_body)
        except ClientGone:
            pass
        except Exception:
            log.exception("unexpected error serving request %s", request_id)
            await send_error(send, GatewayError("Internal error in the gateway."), headers, self.wire.error_body)
        finally:
            runtime.in_flight -= 1

    async def _serve(self, scope: Scope, receive: Receive, send: Send, request_id: str, headers: Headers) -> None:
        runtime = self.runtime
        if runtime.draining:
            headers.append((b"connection", b"close"))
            raise ServiceUnavailable("The gateway is shutting down; retry on another replica.", code="draining")
        loop = asyncio.get_running_loop()
        started = loop.time()
        state: GatewayState = runtime.state
        principal = await runtime.authenticate(self.wire.credentials(scope))
        tags = parse_tags(header(scope, b"x-switchyard-tags"))
        raw = await read_body(scope, receive, state.config.server.max_body_bytes)
        try:
            sent = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"Malformed JSON in the request body: {exc.msg}.", code="invalid_json") from None
        body = self.wire.to_openai(sent)
        route = state.models.get(body["model"])
        if route is None:
            raise NotFound(f"The model '{body['model']}' does not exist.", param="model", code="model_not_found")
        stream = body.get("stream") is True
        if stream and not self.streamable:
            raise InvalidRequest("This endpoint does not support streaming.", param="stream")
        policy, rules = state.routing_for(principal.tenant, route)
        decision = plan_route(
            runtime.router,
            route,
            policy,
            rules,
            tenant=principal.tenant,
            endpoint=self.endpoint,
            body=body,
            needs=requirements(self.endpoint, body, stream, len(raw)),
            default_output_tokens=state.config.ledger.default_output_tokens,
        )
        options = body.get("stream_options")
        wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        pending = admit(runtime.admission, state, principal, route, self.endpoint, body, request_id, decision)
        ticket = NO_TICKET if pending is None else await pending
        if ticket.headers:
            headers.extend(ticket.headers)
        request = RequestLifecycle(
            self.runtime,
            self.endpoint,
            route,
            principal,
            request_id,
            started,
            stream,
            headers,
            decision,
            policy,
            ticket,
            tags,
        )
        request.body = body
        tracing = runtime.tracing
        if tracing is not None:
            request.span = tracing.request_span(scope, self.endpoint.value, route.name, principal.tenant)
            request.span.set_attributes(
                {"switchyard.routing.strategy": decision.strategy, "switchyard.routing.order": list(decision.order)}
            )

        if not stream:
            completion, served = await request.attempts(body, wants_usage, _complete)
            headers.extend(served_headers(served))
            try:
                rendered = self.wire.render(completion.body, route.name, sent)
            except GatewayError as error:
                request.finish(error.http_status, served.target, served.attempts, completion.usage, None, error.code)
                raise
            await send_bytes(send, 200, rendered, headers, JSON)
            request.completion = completion.body
            request.finish(200, served.target, served.attempts, completion.usage, None, None)
            return
        await request.stream(body, wants_usage, receive, send, self.wire.stream_format(route.name, sent))


async def _complete(target: DeploymentTarget, call: UpstreamCall) -> Completion:
    return await target.provider.complete(call)
