"""One request after validation: its attempts, the relay of its stream, and its accounting afterwards.

The hot-path handlers (`proxy.py`, `passthrough.py`) build a `RequestLifecycle` once a request has been
authenticated, validated, routed and admitted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from gateway import request_log
from gateway.accounting import settled_usage, usage_record
from gateway.admission_rules import NO_TICKET, Ticket
from gateway.asgi_io import (
    Headers,
    Receive,
    Send,
    sse_error_event,
    watch_disconnect,
)
from gateway.attempts import Served, first_success
from gateway.client_wire import StreamFormat
from gateway.routing import RoutePolicy
from gateway.state import DeploymentTarget, ModelRoute
from gateway.tracing import finish_span
from policies.router import Decision
from providers.base import CompletionStream, Endpoint, UpstreamCall, Usage
from providers.errors import (
    FailedAttempt,
    GatewayError,
    UpstreamError,
    UpstreamTimeout,
)
from providers.idle_work import idle_work
from providers.usage_estimate import estimate_prompt_tokens

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger("switchyard.proxy")

_SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_END = {"type": "http.response.body", "body": b"", "more_body": False}
CLIENT_CLOSED = 499  # nginx's convention for "client closed the request"


async def _open_stream(target: DeploymentTarget, call: UpstreamCall) -> CompletionStream:
    return await target.provider.open_stream(call)


def served_headers(served: Served) -> Headers:
    return [
        (b"x-switchyard-deployment", served.target.name.encode()),
        (b"x-switchyard-attempts", str(served.attempts).encode()),
    ]


class RequestLifecycle:
    """One request after validation: runs the attempts, relays, and accounts for it afterwards."""

    __slots__ = (
        "audio_seconds",
        "body",
        "completion",
        "decision",
        "ended_at",
        "endpoint",
        "failures",
        "headers",
        "images",
        "policy",
        "principal",
        "relayed",
        "request_id",
        "route",
        "runtime",
        "span",
        "span_ended",
        "started",
        "stream_mode",
        "t0",
        "tags",
        "ticket",
    )

    def __init__(
        self,
        runtime: Runtime,
        endpoint: Endpoint,
        route: ModelRoute,
        principal: Any,
        request_id: str,
        started: float,
        stream: bool,
        headers: Headers,
        decision: Decision,
        policy: RoutePolicy,
        ticket: Ticket = NO_TICKET,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.decision = decision
        self.policy = policy
        self.ticket = ticket
        self.tags = tags or {}
        self.body: dict[str, Any] | None = None
        """The OpenAI request, for a token estimate when the upstream reports no usage."""
        self.completion: bytes | None = None
        # uvloop's clock is cached per loop turn at millisecond resolution: fine for deadlines, too coarse
        # for latency figures (time per output token), which use perf_counter.
        self.t0 = time.perf_counter() - (asyncio.get_running_loop().time() - started)
        self.images = 0
        self.span: Any = None
        self.span_ended = 0
        """When the response ended (time.time_ns), for the span's end, which the deferred accounting sets."""
        self.failures: list[FailedAttempt] = []
        self.audio_seconds = 0.0
        self.ended_at: float | None = None
        """When the response to the client ended (perf_counter): a stream's at `[DONE]`, even if the upstream's
        body ends later; otherwise when `finish()` is called."""
        self.relayed: list[bytes] = []
        """The stream's bytes as relayed (references, not copies), counted only if no usage comes."""
        self.runtime = runtime
        self.endpoint = endpoint
        self.route = route
        self.principal = principal
        self.request_id = request_id
        self.started = started
        self.stream_mode = stream
        self.headers = headers

    async def attempts(self, body: dict[str, Any], wants_usage: bool, send_one: Any) -> tuple[Any, Served]:
        try:
            result, served = await first_success(
                self.route,
                endpoint=self.endpoint,
                body=body,
                stream=self.stream_mode,
                client_wants_usage=wants_usage,
                request_id=self.request_id,
                started=self.started,
                metrics=self.runtime.metrics,
                secrets=self.runtime.state.secrets,
                send=send_one,
                decision=self.decision,
                router=self.runtime.router,
                policy=self.policy,
                timer=self.runtime.deadlines,
                on_abandoned=self.abandoned,
                span=self.span,
                tracing=self.runtime.tracing,
            )
        except GatewayError as error:
            self.failures = list(getattr(error, "attempts", ()))
            self.finish(error.http_status, None, len(getattr(error, "attempts", ())), None, None, error.code)
            raise
        self.failures = served.failures
        return result, served

    async def stream(
        self, body: dict[str, Any], wants_usage: bool, receive: Receive, send: Send, fmt: StreamFormat | None = None
    ) -> None:
        """Relay the first deployment that answers. `fmt` re-renders the OpenAI events for another wire
        format (the Anthropic front door); without it the upstream's bytes go out untouched."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        disconnected = False
        ended = False

        def on_disconnect() -> None:
            nonlocal disconnected
            if ended:  # uvicorn answers `http.disconnect` to a receive() once the response is complete
                return
            disconnected = True
            task.cancel()

        # One pending receive() for the whole stream, attempts included: uvicorn drops send() after a
        # disconnect silently, so without it the upstream would keep generating for nobody.
        watcher = loop.create_task(watch_disconnect(receive, on_disconnect))
        upstream: CompletionStream | None = None
        served: Served | None = None
        broken: UpstreamError | None = None
        status, error_code, ttft = 200, None, None
        try:
            try:
                upstream, served = await self.attempts(body, wants_usage, _open_stream)
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [*_SSE_HEADERS, *self.headers, *served_headers(served)],
                    }
                )
                with self.runtime.deadlines.at(served.total_at):
                    relayed = self.relayed
                    async for chunk in upstream:
                        if ended:  # after `[DONE]`: only the upstream's body end, awaited to reuse its connection
                            continue
                        if ttft is None:
                            ttft = time.perf_counter() - self.t0
                        relayed.append(chunk)
                        if fmt is not None:
                            chunk = fmt.chunk(chunk)
                        if upstream.done:  # `[DONE]` read: the client's response ends with this write
                            ended = True
                            self.ended_at = time.perf_counter()
                            if fmt is not None:
                                chunk += fmt.end()
                        await send({"type": "http.response.body", "body": chunk, "more_body": not ended})
            except (UpstreamError, TimeoutError) as exc:
                error = (
                    exc
                    if isinstance(exc, UpstreamError)
                    else UpstreamTimeout("upstream total timeout while streaming", code="upstream_total_timeout")
                )
                if ended:  # the client was served in full; the upstream broke or was late ending its body
                    assert served is not None
                    log.debug("upstream %s after [DONE] of %s: %s", served.target.name, self.request_id, error)
                else:
                    status, error_code = error.http_status, error.code
                    broken = error
                    event = fmt.error(error) if fmt is not None else sse_error_event(error)
                    await send({"type": "http.response.body", "body": event, "more_body": True})
            finally:
                watcher.cancel()
                if upstream is not None:
                    await upstream.aclose()
            if not ended:
                await send(_END)
        except asyncio.CancelledError:
            if not disconnected:
                raise
            task.uncancel()
            # A client that left after `[DONE]` (the openai SDK stops reading there) while the upstream's
            # body had not ended yet was served in full: a 200, billed with the usage the stream reported.
            if upstream is None or not upstream.done:
                status, error_code = CLIENT_CLOSED, "client_disconnected"
        usage = upstream.usage if upstream is not None else None
        if served is not None:
            router = self.runtime.router
            name = served.target.name
            router.ended(name)
            elapsed = loop.time() - served.attempt_started
            if broken is not None:
                router.failed(name, broken, elapsed)
            elif status == 200:
                router.succeeded(name, elapsed, served.first_byte_s)
            self.finish(status, served.target, served.attempts, usage, ttft, error_code)
        else:  # the client left during the attempts
            self.finish(status, None, 0, None, None, error_code)

    def abandoned(self, target: DeploymentTarget) -> None:
        """A hedge that lost the race: the upstream read the prompt, so it is billed (estimated)."""
        prompt = estimate_prompt_tokens(self.endpoint, self.body) if self.body is not None else 0
        record = usage_record(
            request_id=f"{self.request_id}-hedge-{target.name}",
            principal=self.principal,
            tags=self.tags,
            endpoint=self.endpoint,
            route=self.route,
            target=target,
            status=CLIENT_CLOSED,
            stream=self.stream_mode,
            attempts=1,
            usage=Usage(prompt_tokens=prompt, estimated=True),
            duration=time.perf_counter() - self.t0,
            ttft=None,
            error="hedge_cancelled",
        )
        self.runtime.ledger.record(record)

    def finish(
        self,
        status: int,
        target: DeploymentTarget | None,
        attempts: int,
        usage: Usage | None,
        ttft: float | None,
        error: str | None,
    ) -> None:
        """The request's response has ended: its latency is taken now, its accounting is deferred (see
        `providers/idle_work.py`) and runs within a millisecond, or while the next upstream request waits."""
        if self.ended_at is None:
            self.ended_at = time.perf_counter()
        if self.span is not None:
            self.span_ended = time.time_ns()
        idle_work.defer(self._account, status, target, attempts, usage, ttft, error)

    def _account(
        self,
        status: int,
        target: DeploymentTarget | None,
        attempts: int,
        usage: Usage | None,
        ttft: float | None,
        error: str | None,
    ) -> None:
        runtime = self.runtime
        assert self.ended_at is not None
        duration = self.ended_at - self.t0
        usage = settled_usage(usage, status, self.endpoint, self.body, self.completion, self.relayed)
        self.relayed = []
        deployment = target.name if target is not None else "none"
        runtime.metrics.observe(
            model=self.route.name,
            deployment=deployment,
            endpoint=self.endpoint.value,
            status=status,
            duration=duration,
            ttft=ttft,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            provider_kind=target.provider.kind if target is not None else "",
            upstream_model=target.upstream_model if target is not None else "",
            error_type=str(status) if status >= 400 else None,
        )
        record = usage_record(
            request_id=self.request_id,
            principal=self.principal,
            tags=self.tags,
            endpoint=self.endpoint,
            route=self.route,
            target=target,
            status=status,
            stream=self.stream_mode,
            attempts=attempts,
            usage=usage,
            duration=duration,
            ttft=ttft,
            error=error,
            images=self.images,
            audio_seconds=self.audio_seconds,
        )
        if record.cost_micro_usd:
            runtime.metrics.spent(record.tenant, record.model, record.cost_micro_usd / 1e6)
        runtime.ledger.record(record, self.ticket)
        request_log.emit(record, self.failures, self._prompt_for_log())
        if self.span is not None:
            finish_span(
                self.span,
                status=status,
                error=error,
                end_time=self.span_ended,
                attributes={
                    "gen_ai.response.model": record.upstream_model,
                    "gen_ai.provider.name": record.provider_kind,
                    "gen_ai.usage.input_tokens": record.prompt_tokens,
                    "gen_ai.usage.output_tokens": record.completion_tokens,
                    "switchyard.deployment": record.deployment,
                    "switchyard.attempts": record.attempts,
                    "switchyard.cost_usd": record.cost_micro_usd / 1e6,
                    "switchyard.request_id": record.request_id,
                },
            )

    def _prompt_for_log(self) -> Any:
        tenant = self.runtime.state.config.tenants.get(self.principal.tenant)
        if tenant is None or not tenant.log_prompts or self.body is None:
            return None
        body = self.body
        return body.get("messages") or body.get("prompt") or body.get("input")
