"""OpenAI's `x-ratelimit-*` response headers, for the tightest request limit and the tightest token limit."""

from __future__ import annotations

import math
from collections.abc import Sequence

from gateway.admission_rules import WINDOW_MS, LimitCheck
from gateway.asgi_io import Headers

HeaderPlan = tuple[tuple[tuple[bytes, bytes], bytes, int, bool, tuple[bytes, bytes]], ...]
"""Per unit: (limit header, remaining header name, units free, counted in requests?, reset header)."""


def remaining(limit: LimitCheck, used_ms: int) -> int:
    """Units a GCRA limit has free when its theoretical arrival time is `used_ms` ahead of now."""
    return max(0, math.floor((WINDOW_MS - used_ms) / (WINDOW_MS / limit.limit)))


def header_plan(limits: Sequence[LimitCheck], free: Sequence[int], used_ms: Sequence[int]) -> HeaderPlan:
    """The headers of the tightest limit of each unit, given each limit's free units and ms used."""
    tightest: dict[str, tuple[LimitCheck, int, int]] = {}
    for limit, left, used in zip(limits, free, used_ms, strict=True):
        if limit.unit not in tightest or left < tightest[limit.unit][1]:
            tightest[limit.unit] = (limit, left, used)
    plan = []
    for unit, suffix in (("rpm", b"requests"), ("tpm", b"tokens")):
        if unit in tightest:
            limit, left, used = tightest[unit]
            plan.append(
                (
                    (b"x-ratelimit-limit-" + suffix, str(limit.limit).encode()),
                    b"x-ratelimit-remaining-" + suffix,
                    left,
                    unit == "rpm",
                    (b"x-ratelimit-reset-" + suffix, _duration(used).encode()),
                )
            )
    return tuple(plan)


def render(plan: HeaderPlan, more_requests: int = 0, more_tokens: int = 0) -> Headers:
    """The headers, counting `more_requests` / `more_tokens` (what a lease still holds) as free too."""
    headers: Headers = []
    for limit_header, remaining_name, free, in_requests, reset_header in plan:
        left = free + (more_requests if in_requests else more_tokens)
        headers += (limit_header, (remaining_name, str(left).encode()), reset_header)
    return headers


def limit_headers(limits: Sequence[LimitCheck], used_ms: Sequence[int]) -> Headers:
    """The headers right after an admission that left each limit `used_ms` ahead of now."""
    free = [remaining(limit, used) for limit, used in zip(limits, used_ms, strict=True)]
    return render(header_plan(limits, free, used_ms))


def _duration(ms: int) -> str:
    """OpenAI's reset format: `1s`, `6m0s`, `20ms`."""
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.3g}s"
    return f"{int(seconds // 60)}m{int(seconds % 60)}s"
