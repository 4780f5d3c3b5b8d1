"""Fallback and timeouts in one place: try the ranked deployments until one answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.metrics import Metrics
from gateway.state import DeploymentTarget, ModelRoute, redact
from policies.health import healthy_first
from policies.retry import attempt_window, should_try_next
from providers.base import Deadlines, Endpoint, UpstreamCall
from providers.errors import AllAttemptsFailed, FailedAttempt, UpstreamError

T = TypeVar("T")


@dataclass(slots=True)
class Served:
    target: DeploymentTarget
    attempts: int
    total_at: float
    """The serving attempt's total deadline (a stream keeps relaying until then at most)."""


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
    allowed: set[str] | None = None,
) -> tuple[T, Served]:
    """Call `send` on each deployment of the route's plan until one succeeds.

    Fails over only on retryable errors (connect, timeout, 429, 5xx, broken first event), within the
    policy's attempt count and the request's overall deadline. `allowed` keeps only the deployments able
    to serve the request. Raises `AllAttemptsFailed` listing every
    attempt, with upstream messages kept and secrets redacted.
    """
    loop = asyncio.get_running_loop()
    plan = route.plan
    order = healthy_first(plan.order, route.unhealthy()) if route.watched else plan.order
    if allowed is not None:
        order = tuple(c for c in order if c.name in allowed)
    failures: list[FailedAttempt] = []
    for index, candidate in enumerate(order):
        window = attempt_window(loop.time(), started, plan.timeouts)
        if window is None:
            raise AllAttemptsFailed(failures, reason="the request's overall deadline passed")
        target = route.by_name[candidate.name]
        call = UpstreamCall(
            endpoint=endpoint,
            body=body,
            model=target.upstream_model,
            stream=stream,
            client_wants_usage=client_wants_usage,
            deadlines=Deadlines(window.connect_timeout, window.first_byte_at, window.total_at),
            request_id=request_id,
        )
        try:
            result = await send(target, call)
        except UpstreamError as error:
            error.message = redact(error.message, secrets)
            failures.append(FailedAttempt(target.name, error))
            metrics.attempt(route.name, target.name, error.kind)
            remaining = len(order) - index - 1
            if not should_try_next(
                retryable=error.retryable,
                attempts_made=len(failures),
                max_attempts=plan.max_attempts,
                remaining=remaining,
            ):
                break
            continue
        metrics.attempt(route.name, target.name, "success")
        if failures:
            metrics.failovers.labels(route.name).inc()
        return result, Served(target, len(failures) + 1, window.total_at)
    raise AllAttemptsFailed(failures)
