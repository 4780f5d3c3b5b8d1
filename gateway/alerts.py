"""Alerts: budget thresholds, circuit openings and sustained failover rates. Each is a log line, a
metric and, when `ledger.alert_webhook` is set, a JSON POST (retried with backoff, never blocking)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import aiohttp
import orjson

from gateway.metrics import Metrics
from gateway.settlement import Alert

log = logging.getLogger("switchyard.alerts")

_ATTEMPTS = 4
_MAX_PENDING = 1000


class AlertSink:
    def __init__(self, metrics: Metrics, session: aiohttp.ClientSession, webhook: str | None) -> None:
        self._metrics = metrics
        self._session = session
        self._webhook = webhook
        self._pending: set[asyncio.Task[None]] = set()

    def emit(self, alert: Alert) -> None:
        log.warning(
            "budget alert: %s %s %s budget at %d%% ($%.6f of $%.6f)",
            alert.tenant,
            alert.scope,
            alert.period,
            alert.threshold,
            alert.spend / 1e6,
            alert.limit / 1e6,
        )
        self._metrics.budget_alerts.labels(alert.tenant, alert.scope, str(alert.threshold)).inc()
        self._send({"type": "budget_threshold", **dataclasses.asdict(alert)})

    def event(self, payload: dict[str, object]) -> None:
        """An operational alert (`circuit_open`, `failover_rate`): logged, counted and sent."""
        log.warning("alert: %s", orjson.dumps(payload).decode())
        self._metrics.alerts.labels(str(payload["type"])).inc()
        self._send(payload)

    def _send(self, payload: dict[str, object]) -> None:
        if self._webhook and len(self._pending) < _MAX_PENDING:
            task = asyncio.get_running_loop().create_task(self._post(payload))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _post(self, payload: dict[str, object]) -> None:
        assert self._webhook is not None
        body = orjson.dumps(payload)
        delay = 0.5
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with self._session.post(
                    self._webhook,
                    data=body,
                    headers={"content-type": "application/json"},
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as response:
                    if response.status < 300:
                        return
                    problem = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = type(exc).__name__
            if attempt < _ATTEMPTS:
                await asyncio.sleep(delay)
                delay *= 2
        log.error("alert webhook failed after %d attempts (%s)", _ATTEMPTS, problem)

    async def aclose(self) -> None:
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
