"""Admission: rate limits and budget reservations in one Redis script call, before any upstream call.

Rate limits are GCRA (one theoretical-arrival-time per limit, in ms): `rpm` costs 1 per request, `tpm`
the estimated tokens (prompt + the output bound), corrected by the ledger once the real count is known.
Budgets reserve the estimated cost (an upper bound when the request sets `max_tokens`) against every
budget that applies — tenant, team, key, each per day / month / total — and refuse with 429
`budget_exceeded` when spend + reservations + this estimate would pass one. The ledger settles the
actual cost and releases the reservation; reservations of requests that never settle (a crashed
gateway) expire and are released by the next admission of that tenant.

Every key is under the tenant's hash tag, so the script runs on Redis Cluster. When Redis does not
answer, the tenant's `on_store_outage` decides: admit without limits (open) or answer 503 (closed).
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.asgi_io import Headers
from gateway.auth import Principal
from gateway.config.tenancy import BudgetConfig, RateLimitConfig, TenantConfig
from gateway.metrics import Metrics
from gateway.redis_script import RedisScript
from policies.budgets import PeriodWindow, period_window
from providers.errors import BudgetExceeded, RateLimited, ServiceUnavailable

log = logging.getLogger("switchyard.admission")

WINDOW_MS = 60_000
_UNSAFE = re.compile(r"[^A-Za-z0-9._:@/-]")

# KEYS[1]: the tenant's reservation expiry zset (it routes the call: every key shares the tenant's hash
# tag). ARGV[1]: one JSON object, so redis-py encodes one argument instead of dozens: now (ms), rid,
# expires (ms), estimate (micro-USD), held (the reservation hash), limits [[key, limit, window_ms, cost]],
# budgets [[spend key, reserved key, limit, ttl seconds]].
_ADMIT_SCRIPT = """
local a = cjson.decode(ARGV[1])
local now = a.now
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 100)
for _, rid in ipairs(expired) do
  local held = redis.call('HGET', a.held, rid)
  if held then
    local amount = nil
    for part in string.gmatch(held, '[^|]+') do
      if amount == nil then amount = tonumber(part) else redis.call('DECRBY', part, amount) end
    end
    redis.call('HDEL', a.held, rid)
  end
  redis.call('ZREM', KEYS[1], rid)
end
local tats = {}
for i, l in ipairs(a.limits) do
  local limit, window, cost = l[2], l[3], l[4]
  if cost > limit then return {0, 'too_large', i, -1} end
  local tat = tonumber(redis.call('GET', l[1]) or now)
  if tat < now then tat = now end
  local new = tat + cost * window / limit
  if new - window > now then return {0, 'rate', i, math.ceil(new - window - now)} end
  tats[i] = new
end
local estimate = a.estimate
for j, b in ipairs(a.budgets) do
  local spend = tonumber(redis.call('GET', b[1]) or 0)
  local reserved = tonumber(redis.call('GET', b[2]) or 0)
  if spend + reserved + estimate > b[3] then return {0, 'budget', j, spend, reserved} end
end
local out = {1}
for i, l in ipairs(a.limits) do
  redis.call('SET', l[1], string.format('%.3f', tats[i]), 'PX', math.ceil(tats[i] - now) + 1000)
  out[#out + 1] = math.ceil(tats[i] - now)
end
if #a.budgets > 0 and estimate > 0 then
  local held = {string.format('%d', estimate)}
  for _, b in ipairs(a.budgets) do
    redis.call('INCRBY', b[2], string.format('%d', estimate))
    if b[4] > 0 then redis.call('EXPIRE', b[2], b[4]) end
    held[#held + 1] = b[2]
  end
  redis.call('HSET', a.held, a.rid, table.concat(held, '|'))
  redis.call('ZADD', KEYS[1], a.expires, a.rid)
end
return out
"""


def safe(part: str) -> str:
    """A name made safe for a Redis key segment (config key names are free text)."""
    return _UNSAFE.sub("_", part)


def reservation_keys(tenant: str) -> tuple[str, str]:
    return f"sy:{{{tenant}}}:resv", f"sy:{{{tenant}}}:resv:held"


def spend_key(tenant: str, scope: str, period_id: str) -> str:
    return f"sy:{{{tenant}}}:spend:{scope}:{period_id}"


def reserved_key(tenant: str, scope: str, period_id: str) -> str:
    return f"sy:{{{tenant}}}:reserved:{scope}:{period_id}"


def limit_key(tenant: str, scope: str, unit: str) -> str:
    return f"sy:{{{tenant}}}:rl:{scope}:{unit}"


def spend_scopes(principal: Principal) -> tuple[str, ...]:
    """Every scope whose spend the ledger counts for this principal (budgets or not, so a budget added
    mid-period sees the period's spend): the tenant, its team, its key."""
    scopes = ["tenant"]
    if principal.team:
        scopes.append(f"team:{safe(principal.team)}")
    scopes.append(f"key:{safe(principal.key_id)}")
    return tuple(scopes)


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    scope: str
    """`tenant`, `team:<name>` or `key:<id>`."""
    budget: BudgetConfig
    limit: int
    """micro-USD."""
    window: PeriodWindow


@dataclass(frozen=True, slots=True)
class LimitCheck:
    scope: str
    unit: str
    """`rpm` or `tpm`."""
    limit: int


@dataclass(frozen=True, slots=True)
class Rules:
    """The budgets and limits that apply to one principal and model, from the config and the key."""

    budgets: tuple[tuple[str, BudgetConfig], ...]
    limits: tuple[LimitCheck, ...]
    outage: TenantConfig | None

    @property
    def empty(self) -> bool:
        return not self.budgets and not self.limits

    @property
    def needs_tokens(self) -> bool:
        return bool(self.budgets) or any(limit.unit == "tpm" for limit in self.limits)


def rules_for(principal: Principal, tenant: TenantConfig | None, model: str) -> Rules:
    budgets: list[tuple[str, BudgetConfig]] = []
    limits: list[LimitCheck] = []

    def add_limits(scope: str, config: RateLimitConfig | None) -> None:
        if config is not None:
            if config.rpm:
                limits.append(LimitCheck(scope, "rpm", config.rpm))
            if config.tpm:
                limits.append(LimitCheck(scope, "tpm", config.tpm))

    if tenant is not None:
        budgets.extend(("tenant", b) for b in tenant.budget)
        add_limits("tenant", tenant.rate_limit)
        add_limits(f"model:{safe(model)}", tenant.model_limits.get(model))
        team = tenant.teams.get(principal.team) if principal.team else None
        if team is not None:
            scope = f"team:{safe(principal.team or '')}"
            budgets.extend((scope, b) for b in team.budget)
            add_limits(scope, team.rate_limit)
    key_scope = f"key:{safe(principal.key_id)}"
    budgets.extend((key_scope, b) for b in principal.budgets)
    add_limits(key_scope, principal.rate_limit)
    return Rules(tuple(budgets), tuple(limits), tenant)


@dataclass(frozen=True, slots=True)
class Ticket:
    """What admission granted one request; the ledger settles it."""

    reserved: int = 0
    """micro-USD reserved against each budget (released at settlement)."""
    estimated_tokens: int = 0
    tpm: tuple[tuple[str, float], ...] = ()
    """GCRA keys charged in tokens, with their emission interval in ms, for the ledger's correction."""
    budgets: tuple[BudgetCheck, ...] = ()
    headers: Headers | None = None


NO_TICKET = Ticket()


class Admission:
    def __init__(self, client: aioredis.Redis, metrics: Metrics) -> None:
        self._redis = client
        self._metrics = metrics
        self._down_until = 0.0
        self._script = RedisScript(client, _ADMIT_SCRIPT)

    async def admit(
        self,
        principal: Principal,
        rules: Rules,
        *,
        request_id: str,
        estimated_tokens: int,
        estimated_cost: int,
        hold_seconds: float,
    ) -> Ticket:
        """Check and charge every limit and budget at once; raises `RateLimited` / `BudgetExceeded` (429)
        or, while Redis is down and the tenant fails closed, `ServiceUnavailable` (503)."""
        now = time.time()
        tenant = principal.tenant
        checks = tuple(
            BudgetCheck(scope, b, round(b.usd * 1_000_000), period_window(b.period, now)) for scope, b in rules.budgets
        )
        zset, held = reservation_keys(tenant)
        packed = orjson.dumps(
            {
                "now": int(now * 1000),
                "rid": request_id,
                "expires": int((now + hold_seconds) * 1000),
                "estimate": estimated_cost,
                "held": held,
                "limits": [
                    [
                        limit_key(tenant, limit.scope, limit.unit),
                        limit.limit,
                        WINDOW_MS,
                        1 if limit.unit == "rpm" else estimated_tokens,
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
            }
        )
        if now < self._down_until:
            return self._outage(rules, None)
        began = time.perf_counter()
        try:
            reply = await self._script.call(1, zset, packed)
        except (RedisError, OSError) as exc:
            self._down_until = now + 1.0
            return self._outage(rules, exc)
        self._metrics.admission_duration.observe(time.perf_counter() - began)
        if int(reply[0]) != 1:
            raise self._refusal(reply, rules, checks, estimated_tokens, estimated_cost, now)
        headers = _limit_headers(rules.limits, [int(x) for x in reply[1:]])
        return Ticket(
            reserved=estimated_cost if checks else 0,
            estimated_tokens=estimated_tokens,
            tpm=tuple(
                (limit_key(tenant, limit.scope, "tpm"), WINDOW_MS / limit.limit)
                for limit in rules.limits
                if limit.unit == "tpm"
            ),
            budgets=checks,
            headers=headers,
        )

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


def _limit_headers(limits: tuple[LimitCheck, ...], used_ms: list[int]) -> Headers:
    """OpenAI's `x-ratelimit-*` headers for the tightest request and token limits."""
    tightest: dict[str, tuple[int, int, int]] = {}
    for limit, used in zip(limits, used_ms, strict=True):
        interval = WINDOW_MS / limit.limit
        remaining = max(0, math.floor((WINDOW_MS - used) / interval))
        if limit.unit not in tightest or remaining < tightest[limit.unit][1]:
            tightest[limit.unit] = (limit.limit, remaining, used)
    headers: Headers = []
    for unit, suffix in (("rpm", b"requests"), ("tpm", b"tokens")):
        if unit in tightest:
            total, remaining, used = tightest[unit]
            headers.append((b"x-ratelimit-limit-" + suffix, str(total).encode()))
            headers.append((b"x-ratelimit-remaining-" + suffix, str(remaining).encode()))
            headers.append((b"x-ratelimit-reset-" + suffix, _duration(used).encode()))
    return headers


def _duration(ms: int) -> str:
    """OpenAI's reset format: `1s`, `6m0s`, `20ms`."""
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.3g}s"
    return f"{int(seconds // 60)}m{int(seconds % 60)}s"
