"""Fallback, hedging and timeouts in one place: try the ranked deployments until one answers.

The order comes from the router's decision; each attempt asks the circuit breaker first (an open
circuit is skipped, a half-open one lets a probe through), failover attempts and hedges spend the
retry budget, and every outcome is reported back to the router's health tracking.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.metrics import Metrics
from gateway.routing import RoutePolicy, Router
from gateway.state import DeploymentTarget, ModelRoute, redact
from gateway.tracing import Tracing, finish_span
from policies.hedging import hedge_delay
from policies.retry import attempt_window, should_try_next
from policies.router import Decision
from providers.base import Deadlines, Endpoint, UpstreamCall
from providers.deadline import DeadlineWheel
from providers.errors import AllAttemptsFailed, FailedAttempt, ServiceUnavailable, UpstreamError

T = TypeVar("T")


@dataclass(slots=True)
class Served:
    target: DeploymentTarget
    attempts: int
    total_at: float
    """The serving attempt's total deadline (a stream keeps relaying until then at most)."""
    attempt_started: float = 0.0
    """`loop.time()` when the serving attempt began (for its latency)."""
    first_byte_s: float | None = None
    """Seconds from the serving attempt's start to its first event (streams)."""
    failures: list[FailedAttempt] = field(default_factory=list)
    """The attempts that failed before this one served."""


@dataclass(slots=True)
class _Request:
    route: ModelRoute
    endpoint: Endpoint
    body: dict[str, Any]
    stream: bool
    client_wants_usage: bool
    request_id: str
    started: float
    metrics: Metrics
    secrets: tuple[str, ...]
    router: Router
    policy: RoutePolicy
    timer: DeadlineWheel
    span: Any = None
    tracing: Tracing | None = None


async def first_success(
    route: ModelRoute,
    *,
    endpoint: Endpoint,
    body: dict[str, Any],
    stream: bool,
    client_wants_usage: bool,
    request_id: str,
    started: float,
    metrics: Metrics,
    secrets: tuple[str, ...],
    send: Callable[[DeploymentTarget, UpstreamCall], Awaitable[T]],
    decision: Decision,
    router: Router,
    policy: RoutePolicy,
    timer: DeadlineWheel,
    on_abandoned: Callable[[DeploymentTarget], None] | None = None,
    span: Any = None,
    tracing: Tracing | None = None,
) -> tuple[T, Served]:
    """Call `send` on the decision's deployments in order until one succeeds.

    Fails over only on retryable errors (connect, timeout, 429, 5xx, broken first event), within the
    policy's attempt count, the request's overall deadline and the retry budget. With hedging on, a
    slow first byte starts the next candidate as well and the first answer wins (the other is
    cancelled, and reported to `on_abandoned` so it is billed). Raises `AllAttemptsFailed` listing every
    attempt, with upstream messages kept and secrets redacted.
    """
    request = _Request(
        route, endpoint, body, stream, client_wants_usage, request_id, started, metrics, secrets, router, policy, timer,
        span, tracing,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    failures: list[FailedAttempt] = []
    queue = list(decision.order)
    tried = 0
    router.retry_budget.on_request(loop.time())
    while queue and tried < decision.max_attempts:
        name = queue.pop(0)
        now = loop.time()
        if tried and not router.retry_budget.try_acquire_retry(now):
            raise AllAttemptsFailed(failures, reason="the retry budget is spent (too many retries recently)")
        if not router.breakers.allow(name, now):
            continue  # its circuit opened, or its probe slots filled, since the decision
        window = attempt_window(now, started, policy.timeouts)
        if window is None:
            raise AllAttemptsFailed(failures, reason="the request's overall deadline passed")
        tried += 1
        target = route.by_name[name]
        attempt = _attempt(request, target, send, window.connect_timeout, window.first_byte_at, window.total_at)
        hedge_with = _hedge_candidate(request, queue, tried, decision.max_attempts)
        if hedge_with is None:
            outcome = await attempt
        else:
            outcome, hedged = await _hedged(request, target, attempt, hedge_with, queue, send, on_abandoned)
            tried += hedged
        if isinstance(outcome, _Won):
            outcome.served.attempts = tried
            outcome.served.failures = failures
            if failures:
                metrics.failovers.labels(route.name).inc()
            router.served(route.name, bool(failures))
            return outcome.result, outcome.served
        failures.extend(outcome.failures)
        if not should_try_next(
            retryable=all(f.error.retryable for f in outcome.failures),
            attempts_made=tried,
            max_attempts=decision.max_attempts,
            remaining=len(queue),
        ):
            break
    if not failures:
        retry = decision.retry_after_s
        raise ServiceUnavailable(
            f"Every deployment of model '{route.name}' is unavailable (circuit open or cooling down after a 429)"
            + (f"; retry in {retry:.0f}s." if retry else "."),
            code="no_deployment_available",
        )
    raise AllAttemptsFailed(failures)


@dataclass(slots=True)
class _Won:
    result: Any
    served: Served


@dataclass(slots=True)
class _Lost:
    failures: list[FailedAttempt]


async def _attempt(
    request: _Request,
    target: DeploymentTarget,
    send: Callable[[DeploymentTarget, UpstreamCall], Awaitable[Any]],
    connect_timeout: float,
    first_byte_at: float,
    total_at: float,
) -> _Won | _Lost:
    loop = asyncio.get_running_loop()
    attempt_span = None
    extra: tuple[tuple[str, str], ...] = ()
    if request.tracing is not None and request.span is not None:
        attempt_span = request.tracing.attempt_span(
            request.span, target.name, target.provider.kind, target.upstream_model
        )
        extra = request.tracing.headers(attempt_span)
    # In `UpstreamCall._fields` order: keywords from here cost the compiled record 1.1 µs more (timeit).
    call = UpstreamCall(
        request.endpoint,
        request.body,
        target.upstream_model,
        request.stream,
        request.client_wants_usage,
        Deadlines(connect_timeout, first_byte_at, total_at, request.timer),
        request.request_id,
        extra,
    )
    router = request.router
    begun = loop.time()
    router.started(target.name)
    try:
        result = await send(target, call)
    except UpstreamError as error:
        router.ended(target.name)
        error.message = redact(error.message, request.secrets)
        router.failed(target.name, error, loop.time() - begun)
        request.metrics.attempt(request.route.name, target.name, error.kind)
        if attempt_span is not None:
            finish_span(attempt_span, status=error.http_status, error=error.kind, attributes={})
        return _Lost([FailedAttempt(target.name, error)])
    except BaseException:
        router.ended(target.name)
        router.breakers.release(target.name, loop.time())
        if attempt_span is not None:
            finish_span(attempt_span, status=499, error="cancelled", attributes={})
        raise
    elapsed = loop.time() - begun
    request.metrics.attempt(request.route.name, target.name, "success")
    if attempt_span is not None:
        finish_span(attempt_span, status=200, attributes={})
    if request.stream:  # the stream is open: latency and in-flight are reported when it ends
        return _Won(result, Served(target, 0, total_at, begun, elapsed))
    router.ended(target.name)
    router.succeeded(target.name, elapsed, elapsed)
    return _Won(result, Served(target, 0, total_at, begun, elapsed))


def _hedge_candidate(request: _Request, queue: list[str], tried: int, max_attempts: int) -> str | None:
    if request.policy.hedge is None or not queue or tried >= max_attempts:
        return None
    return queue[0]


async def _hedged(
    request: _Request,
    target: DeploymentTarget,
    first: Awaitable[_Won | _Lost],
    hedge_name: str,
    queue: list[str],
    send: Callable[[DeploymentTarget, UpstreamCall], Awaitable[Any]],
    on_abandoned: Callable[[DeploymentTarget], None] | None,
) -> tuple[_Won | _Lost, bool]:
    """Run `first`; past the deployment's p95 time to first byte with no answer, start the hedge too.
    Returns the outcome and whether a hedge was sent."""
    loop = asyncio.get_running_loop()
    router = request.router
    hedge = request.policy.hedge
    assert hedge is not None
    delay = hedge_delay(
        router.latency.view(target.name, loop.time()),
        stream=request.stream,
        min_s=hedge.min_s,
        max_s=hedge.max_s,
        default_s=hedge.default_s,
        min_samples=hedge.min_samples,
    )
    primary = asyncio.ensure_future(first)
    done, _ = await asyncio.wait({primary}, timeout=delay)
    if done:
        return primary.result(), False
    now = loop.time()
    window = attempt_window(now, request.started, request.policy.timeouts)
    if window is None or not router.retry_budget.try_acquire_retry(now) or not router.breakers.allow(hedge_name, now):
        return await primary, False
    queue.remove(hedge_name)
    request.metrics.hedges.labels(request.route.name).inc()
    backup_target = request.route.by_name[hedge_name]
    backup = asyncio.ensure_future(
        _attempt(request, backup_target, send, window.connect_timeout, window.first_byte_at, window.total_at)
    )
    racing = {primary: target, backup: backup_target}
    failures: list[FailedAttempt] = []
    try:
        while racing:
            done, _ = await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                racing.pop(task)
                outcome = task.result()
                if isinstance(outcome, _Won):
                    for loser, loser_target in racing.items():
                        await _abandon(loser, loser_target, request, on_abandoned)
                    racing.clear()
                    return outcome, True
                failures.extend(outcome.failures)
        return _Lost(failures), True
    finally:
        for task in racing:
            task.cancel()


async def _abandon(
    task: asyncio.Future[_Won | _Lost],
    target: DeploymentTarget,
    request: _Request,
    on_abandoned: Callable[[DeploymentTarget], None] | None,
) -> None:
    """Cancel the losing attempt (its upstream connection closes) and bill what it may have used."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        outcome = await task
        if isinstance(outcome, _Won):  # it finished in the same instant: close what it opened
            closer = getattr(outcome.result, "aclose", None)
            if closer is not None:
                await closer()
            if request.stream:  # an open stream was still counted in flight
                request.router.ended(target.name)
    if on_abandoned is not None:
        on_abandoned(target)
