"""One structured JSON line per request on the `switchyard.requests` logger (stderr by default).

The line never holds an API key or an Authorization header (the gateway never keeps them past
authentication, and upstream messages are redacted) and never the prompt, unless the tenant's
`log_prompts: true` asks for it while debugging.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.usage_record import UsageRecord
from providers.errors import FailedAttempt

log = logging.getLogger("switchyard.requests")


def configure(enabled: bool) -> None:
    """Raw JSON lines (no level or timestamp prefix: the line carries its own)."""
    log.propagate = False
    log.handlers.clear()
    if enabled:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    else:
        log.setLevel(logging.CRITICAL + 1)


def emit(record: UsageRecord, failures: Sequence[FailedAttempt], prompt: Any = None) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    line: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.ts, UTC).isoformat(timespec="milliseconds"),
        "event": "request",
        "request_id": record.request_id,
        "tenant": record.tenant,
        "team": record.team,
        "key_id": record.key_id,
        "endpoint": record.endpoint,
        "model": record.model,
        "deployment": record.deployment,
        "status": record.status,
        "stream": record.stream,
        "attempts": record.attempts,
        "attempt_errors": [
            {
                "deployment": f.deployment,
                "error": f.error.code or type(f.error).__name__,
                "message": f.error.message[:300],
            }
            for f in failures
        ],
        "latency_ms": record.latency_ms,
        "ttft_ms": record.ttft_ms,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "cached_tokens": record.cached_tokens,
        "reasoning_tokens": record.reasoning_tokens,
        "cost_usd": record.cost_micro_usd / 1e6,
        "estimated": record.estimated,
        "error": record.error,
    }
    if record.tags:
        line["tags"] = record.tags
    if prompt is not None:
        line["prompt"] = prompt
    log.info(orjson.dumps(line).decode())
