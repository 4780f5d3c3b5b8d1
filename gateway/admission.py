"""Admission: rate limits and budget reservations before any upstream call — one Redis script call, or
none when the request fits a lease this gateway holds (`policies/admission_lease.py`).

Rate limits are GCRA (one theoretical-arrival-time per limit, in ms): `rpm` costs 1 per request, `tpm`
the estimated tokens (prompt + the output bound), corrected by the ledger once the real count is known.
Budgets reserve the estimated cost (an upper bound when the request sets `max_tokens`) against every
budget that applies — tenant, team, key, each per day / month / total — and refuse with 429
`budget_exceeded` when spend + reservations + this estimate would pass one. The ledger settles the
actual cost and releases the reservation; reservations of requests that never settle (a crashed
gateway) expire and are released by the next admission of that tenant.

Every key is under the tenant's hash tag, so the script runs on Redis Cluster. When Redis does not
answer, the tenant's `on_store_outage` decides: admit without limits (open) or answer 503 (closed);
a lease granted before the outage still admits what it reserved, for the rest of its second.

A busy key asks for a lease with its admission call: the same script grants room for `n` requests when
the limits and budgets have plenty free, else admits this request alone. Requests of the key arriving
while a lease is being asked for wait for that answer instead of asking too. A lease whose second is
over, or that cannot cover the next request, is retired: what it did not use is given back in the
background (`RETURN_SCRIPT`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.admission_rules import (
    NO_TICKET,
    WINDOW_MS,
    BudgetCheck,
    LimitCheck,
    Rules,
    Ticket,
    limit_key,
    reservation_keys,
    reserved_key,
    rules_for,
    spend_key,
)
from gateway.admission_scripts import ADMIT_SCRIPT, RETURN_SCRIPT
from gateway.auth import Principal
from gateway.config.tenancy import TenantConfig
from gateway.metrics import Metrics
from gateway.ratelimit_headers import HeaderPlan, header_plan, limit_headers, remaining, render
from gateway.redis_script import RedisScript
from policies.admission_lease import LEASE_SECONDS, LEASE_SHARE, MIN_REQUESTS, Lease, next_size, per_request
from policies.budgets import period_window
from providers.errors import BudgetExceeded, RateLimited, ServiceUnavailable

log = logging.getLogger("switchyard.admission")


@dataclass(frozen=True, slots=True)
class AdmissionPlan:
    """The rules of one principal and model with their budget windows, kept until the first window ends."""

    principal: Principal
    tenant: TenantConfig | None
    rules: Rules
    checks: tuple[BudgetCheck, ...]
    until: float
    key: tuple[object, ...]
    """Names the plan's lease."""


_PLAN_CACHE = 10_000


class Admission:
    def __init__(self, client: aioredis.Redis, metrics: Metrics, *, leases: bool = True) -> None:
        self._redis = client
        self._metrics = metrics
        self._down_until = 0.0
        self._script = RedisScript(client, ADMIT_SCRIPT)
        self._return_script = RedisScript(client, RETURN_SCRIPT)
        self._use_leases = leases
        self._leases: dict[tuple[object, ...], _Held] = {}
        self._asking: dict[tuple[object, ...], asyncio.Future[None]] = {}
        """Lease requests in flight: other requests of the same key wait for the answer."""
        self._alone_until: dict[tuple[object, ...], float] = {}
        """Keys near a limit, admitted request by request for a while."""
        self._plans: dict[tuple[int, int, str], AdmissionPlan] = {}
        self._returns: list[_Held] = []
        self._returner: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name="admission-leases")

    async def aclose(self) -> None:
        """Give back every lease's remainder (best effort: Redis expires it anyway)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for key in list(self._leases):
            self._retire(key)
        if self._returner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._returner, 5.0)

    def plan(self, principal: Principal, tenant: TenantConfig | None, model: str, now: float) -> AdmissionPlan:
        """The budgets and limits that apply to `principal` calling `model`, cached per principal object and
        tenant config (a reload or a refreshed key makes new ones) until a budget window ends."""
        ident = (id(principal), id(tenant), model)
        plan = self._plans.get(ident)
        if plan is not None and plan.principal is principal and plan.tenant is tenant and now < plan.until:
            return plan
        rules = rules_for(principal, tenant, model)
        checks = tuple(
            BudgetCheck(scope, b, round(b.usd * 1_000_000), period_window(b.period, now)) for scope, b in rules.budgets
        )
        until = min((c.window.end for c in checks if c.window.end is not None), default=math.inf)
        key = (principal.tenant, principal.key_id, *ident, *(c.window.id for c in checks))
        if len(self._plans) >= _PLAN_CACHE:
            self._plans.clear()
        plan = self._plans[ident] = AdmissionPlan(principal, tenant, rules, checks, until, key)
        return plan

    async def admit(
        self,
        plan: AdmissionPlan,
        *,
        request_id: str,
        estimated_tokens: int,
        estimated_cost: int,
        hold_seconds: float,
    ) -> Ticket:
        """Check and charge every limit and budget at once — from a lease held here, else with one Redis
        call; raises `RateLimited` / `BudgetExceeded` (429) or, while Redis is down and the tenant fails
        closed, `ServiceUnavailable` (503)."""
        now = time.time()
        rules, checks, key = plan.rules, plan.checks, plan.key
        tenant = plan.principal.tenant
        held = None
        if self._use_leases:
            while True:
                held = self._leases.get(key)
                if held is not None and held.lease.take(now, estimated_tokens, estimated_cost, hold_seconds):
                    return self._ticket(held, checks, estimated_tokens, estimated_cost)
                asking = self._asking.get(key)
                if asking is None:
                    break
                await asyncio.shield(asking)  # another request of this key is asking Redis for a lease
                now = time.time()
        want = 0
        if self._use_leases and now >= self._alone_until.get(key, 0.0):
            want = next_size(held.lease if held is not None else None, now)
        if held is not None:
            self._retire(key)
        if now < self._down_until:
            return self._outage(rules, None)
        lease_id = f"lease:{request_id}"
        lease_tokens, lease_cost = per_request(estimated_tokens), per_request(estimated_cost) if checks else 0
        lease_expires = now + LEASE_SECONDS + hold_seconds
        zset, held_key = reservation_keys(tenant)
        packed = orjson.dumps(
            {
                "now": int(now * 1000),
                "rid": request_id,
                "expires": int((now + hold_seconds) * 1000),
                "estimate": estimated_cost,
                "held": held_key,
                "limits": [
                    [
                        limit_key(tenant, limit.scope, limit.unit),
                        limit.limit,
                        WINDOW_MS,
                        1 if limit.unit == "rpm" else estimated_tokens,
                        1 if limit.unit == "rpm" else lease_tokens,
                    ]
                    for limit in rules.limits
                ],
                "budgets": [
                    [
                        spend_key(tenant, c.scope, c.window.id),
                        reserved_key(tenant, c.scope, c.window.id),
                        c.limit,
                        c.window.ttl(now) or 0,
                    ]
                    for c in checks
                ],
                "want": want,
                "min": MIN_REQUESTS,
                "share": LEASE_SHARE,
                "lid": lease_id,
                "lexpires": int(lease_expires * 1000),
                "lcost": lease_cost,
            }
        )
        mine: asyncio.Future[None] | None = None
        if want:
            mine = self._asking[key] = asyncio.get_running_loop().create_future()
        began = time.perf_counter()
        try:
            reply = await self._script.call(1, zset, packed)
        except (RedisError, OSError) as exc:
            self._down_until = now + 1.0
            return self._outage(rules, exc)
        finally:
            if mine is not None:
                del self._asking[key]
                mine.set_result(None)
        self._metrics.admission_duration.observe(time.perf_counter() - began)
        granted = int(reply[1]) if int(reply[0]) == 1 else 0
        if want and not granted:
            self._alone_until[key] = now + LEASE_SECONDS  # near a limit: request by request for a while
        if int(reply[0]) != 1:
            raise self._refusal(reply, rules, checks, estimated_tokens, estimated_cost, now)
        used = [int(x) for x in reply[2:]]
        if granted:
            lease = Lease(
                lease_id,
                granted,
                granted,
                granted * lease_tokens,
                granted * lease_cost,
                use_until=now + LEASE_SECONDS,
                expires=lease_expires,
            )
            free = [remaining(limit, ms) for limit, ms in zip(rules.limits, used, strict=True)]
            plan_headers = header_plan(rules.limits, free, used)
            held = self._leases[key] = _Held(lease, tenant, rules.limits, _tpm_keys(tenant, rules.limits), plan_headers)
            self._metrics.admission_leases.inc()
            lease.take(now, estimated_tokens, estimated_cost, hold_seconds)
            return self._ticket(held, checks, estimated_tokens, estimated_cost)
        return Ticket(
            reserved=estimated_cost if checks else 0,
            estimated_tokens=estimated_tokens,
            tpm=_tpm_keys(tenant, rules.limits),
            budgets=checks,
            headers=limit_headers(rules.limits, used),
        )

    def _ticket(self, held: _Held, checks: tuple[BudgetCheck, ...], tokens: int, cost: int) -> Ticket:
        """A ticket for a request admitted from a lease; its headers count what the lease still holds as free."""
        lease = held.lease
        headers = render(held.headers, lease.requests, lease.tokens)
        return Ticket(
            reserved=cost if checks else 0,
            estimated_tokens=tokens,
            tpm=held.tpm,
            budgets=checks,
            headers=headers,
            lease=lease.id,
        )

    def _retire(self, key: tuple[object, ...]) -> None:
        """Stop admitting from the key's lease and give its remainder back, off the request path."""
        held = self._leases.pop(key, None)
        if held is None:
            return
        self._returns.append(held)
        if self._returner is None or self._returner.done():
            self._returner = asyncio.create_task(self._return_all(), name="admission-lease-return")

    async def _return_all(self) -> None:
        while self._returns:
            held = self._returns.pop()
            lease = held.lease
            now = time.time()
            limits = [
                [
                    limit_key(held.tenant, limit.scope, limit.unit),
                    lease.requests if limit.unit == "rpm" else lease.tokens,
                    WINDOW_MS / limit.limit,
                ]
                for limit in held.limits
            ]
            if not lease.cost and not any(units for _, units, _ in limits):
                continue
            zset, held_key = reservation_keys(held.tenant)
            packed = orjson.dumps(
                {"held": held_key, "lid": lease.id, "now": int(now * 1000), "cost": lease.cost, "limits": limits}
            )
            try:
                await self._return_script.call(1, zset, packed)
            except (RedisError, OSError) as exc:
                # Its reservation expires with the lease; permits left unused come back as the window moves on.
                log.warning("admission: could not return lease %s (%s)", lease.id, type(exc).__name__)

    async def _sweep(self) -> None:
        """Retire leases whose time is over, so an idle tenant's reservations and permits go back."""
        while True:
            await asyncio.sleep(LEASE_SECONDS / 2)
            now = time.time()
            for key in [k for k, held in self._leases.items() if now >= held.lease.use_until]:
                self._retire(key)
            for key in [k for k, until in self._alone_until.items() if now >= until]:
                del self._alone_until[key]

    def _outage(self, rules: Rules, exc: BaseException | None) -> Ticket:
        policy = rules.outage.on_store_outage if rules.outage is not None else None
        closed = (rules.budgets and (policy is None or policy.budgets == "closed")) or (
            rules.limits and policy is not None and policy.rate_limits == "closed"
        )
        self._metrics.admission_outages.labels("closed" if closed else "open").inc()
        if exc is not None:
            log.warning(
                "admission: Redis unavailable (%s); failing %s", type(exc).__name__, "closed" if closed else "open"
            )
        if closed:
            raise ServiceUnavailable(
                "Budgets and limits cannot be checked right now (store unavailable); retry shortly.",
                code="store_unavailable",
            )
        return NO_TICKET

    def _refusal(
        self,
        reply: list[object],
        rules: Rules,
        checks: tuple[BudgetCheck, ...],
        tokens: int,
        cost: int,
        now: float,
    ) -> RateLimited:
        kind = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
        index = int(str(reply[2])) - 1
        self._metrics.admission_rejections.labels(kind).inc()
        if kind == "budget":
            check = checks[index]
            spend, reserved = int(str(reply[3])), int(str(reply[4]))
            left = max(0, check.limit - spend - reserved)
            return BudgetExceeded(
                f"The {check.budget.period} budget of {check.scope} (${check.budget.usd:g}) cannot cover this request:"
                f" ${left / 1e6:.6f} left after ${spend / 1e6:.6f} spent and ${reserved / 1e6:.6f} reserved by"
                f" requests in flight; this one may cost up to ${cost / 1e6:.6f}"
                " (set max_tokens to lower the estimate).",
                retry_after=check.window.seconds_left(now),
            )
        limit = rules.limits[index]
        what = "requests" if limit.unit == "rpm" else "tokens"
        if kind == "too_large":
            return RateLimited(
                f"This request needs about {tokens} tokens, more than the {limit.scope} limit of {limit.limit}"
                " tokens per minute allows at once; lower max_tokens or the prompt.",
                code="tokens_exceeded",
            )
        retry_ms = int(str(reply[3]))
        return RateLimited(
            f"Rate limit reached for {limit.scope}: {limit.limit} {what} per minute. Retry in {retry_ms / 1000:.1f}s.",
            retry_after=retry_ms / 1000,
            extra_headers=[(b"retry-after-ms", str(retry_ms).encode())],
        )


@dataclass(slots=True)
class _Held:
    """A lease this gateway admits from, with what returning it and ticketing from it need."""

    lease: Lease
    tenant: str
    limits: tuple[LimitCheck, ...]
    tpm: tuple[tuple[str, float], ...]
    headers: HeaderPlan
    """The `x-ratelimit-*` headers of the tightest limits at the grant."""


def _tpm_keys(tenant: str, limits: tuple[LimitCheck, ...]) -> tuple[tuple[str, float], ...]:
    return tuple(
        (limit_key(tenant, limit.scope, "tpm"), WINDOW_MS / limit.limit) for limit in limits if limit.unit == "tpm"
    )
