"""Settling one usage record in Redis: the idempotent ledger script and what each record asks of it.

For each record, in one script call per tenant and batch:
- the reservation its admission made is released (always, even for a replay: releasing is idempotent);
  a request admitted from a lease releases its own estimate from the lease's reservation, once;
- if its request id is new (a `SET NX` dedupe key), the event is appended to the tenant's usage stream,
  the hour and day aggregates (team, model and deployment) are incremented, the spend counters of its
  tenant, team and key for the day, month and all time grow by its cost, and its tpm limits are
  corrected by the difference between the estimated and the actual tokens.
The script returns each spend counter's new value, so the gateway can tell which soft-budget thresholds
this very record crossed: counters only grow, so exactly one record crosses each threshold.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from gateway.admission_rules import NO_TICKET, Ticket, reservation_keys, safe, spend_key
from gateway.admission_scripts import RELEASE_LUA
from gateway.config.tenancy import RetentionConfig
from gateway.usage_record import UsageRecord, usage_stream_key
from policies.budgets import GRACE_SECONDS, crossed_thresholds, period_window

# KEYS[1]: the tenant's usage stream; KEYS[2..]: one dedupe key per record. ARGV[1]: dedupe TTL,
# ARGV[2]: stream MAXLEN, ARGV[3]/[4]: the tenant's reservation zset and hash, then per record its
# event JSON and its settlement JSON (cjson): rid, cost, now_ms, spend [[key, expire at (UNIX s, 0: never),
# watched]], agg [[key, expire at (UNIX s; a value under 10^9 is a TTL in seconds, as spooled before
# 2026-12-03), field prefix]], m (metric values in METRICS order), tpm [[key, interval_ms, token
# delta]]. Expiry times are absolute and fixed per key, so they are set only when a record creates the key
# or one of its fields (a counter that equals its own increment), and a record that costs nothing does not
# touch the spend counters. Each command a script calls costs Redis 6.2 ~3.5-4 µs here (the spend loop's
# ten took ~40 µs per record); the expiries set every time were six of a record's commands.
SETTLE_SCRIPT = (
    RELEASE_LUA
    + """
local metrics = {'requests', 'errors', 'prompt_tokens', 'completion_tokens', 'cached_tokens',
  'cache_write_tokens', 'reasoning_tokens', 'cost_micro_usd', 'estimated'}
local out = {}
for i = 2, #KEYS do
  local event = ARGV[3 + 2 * (i - 1)]
  local s = cjson.decode(ARGV[4 + 2 * (i - 1)])
  if not s.lease then release(ARGV[4], ARGV[3], s.rid, nil) end
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    if s.lease and s.est > 0 then release(ARGV[4], ARGV[3], s.lease, s.est) end
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'event', event)
    for _, agg in ipairs(s.agg) do
      local fresh = false
      for m, name in ipairs(metrics) do
        if s.m[m] ~= 0 and redis.call('HINCRBY', agg[1], agg[3] .. name, s.m[m]) == s.m[m] then fresh = true end
      end
      if fresh then
        if agg[2] < 1000000000 then redis.call('EXPIRE', agg[1], agg[2]) else redis.call('EXPIREAT', agg[1], agg[2]) end
      end
    end
    if s.cost ~= 0 then  -- a free record leaves the counters as they are (a missing one reads as 0)
      for _, sp in ipairs(s.spend) do
        local after = redis.call('INCRBY', sp[1], s.cost)
        if sp[2] > 0 and after == s.cost then redis.call('EXPIREAT', sp[1], sp[2]) end
        if sp[3] == 1 and s.cost > 0 then out[#out + 1] = {s.rid, sp[1], after} end
      end
    end
    for _, t in ipairs(s.tpm) do
      local tat = tonumber(redis.call('GET', t[1]) or 0)
      if tat > 0 and t[3] ~= 0 then
        local new = tat + t[3] * t[2]
        if new > s.now then
          redis.call('SET', t[1], string.format('%.3f', new), 'PX', math.ceil(new - s.now) + 1000)
        else
          redis.call('DEL', t[1])
        end
      end
    end
  end
end
return out
"""
)
SETTLE_SHA = hashlib.sha1(SETTLE_SCRIPT.encode()).hexdigest()

PERIODS = ("day", "month", "total")


def dedupe_key(tenant: str, request_id: str) -> str:
    return f"sy:{{{tenant}}}:usage:seen:{request_id}"


def aggregate_key(tenant: str, bucket: str) -> str:
    """`bucket` is `d20261201` (a UTC day) or `h2026120113` (a UTC hour)."""
    return f"sy:{{{tenant}}}:agg:{bucket}"


def spend_scopes(tenant: str, team: str | None, key_id: str) -> tuple[str, ...]:
    """Every scope whose spend is counted (budgets or not, so a budget added mid-period sees the period's
    spend so far): the tenant, its team, its key."""
    return ("tenant", *((f"team:{safe(team)}",) if team else ()), f"key:{safe(key_id)}")


@dataclass(frozen=True, slots=True)
class Alert:
    """A soft-budget threshold that one record's cost crossed."""

    tenant: str
    scope: str
    period: str
    threshold: int
    spend: int
    limit: int


@lru_cache(maxsize=4096)
def _spend_counters(tenant: str, team: str | None, key_id: str, day: int) -> tuple[tuple[str, int, int], ...]:
    """The spend counters a record of this principal on this UTC day adds to, with the UNIX time each
    expires (its period's end plus a grace; 0: never), and 0 (not watched for alerts). The same for every
    record of the day: cached."""
    noon = day * 86400 + 43200
    out = []
    for scope in spend_scopes(tenant, team, key_id):
        for period in PERIODS:
            window = period_window(period, noon)
            expire_at = int(window.end) + GRACE_SECONDS if window.end is not None else 0
            out.append((spend_key(tenant, scope, window.id), expire_at, 0))
    return tuple(out)


@lru_cache(maxsize=64)
def _buckets(hour: int) -> tuple[str, str]:
    moment = datetime.fromtimestamp(hour * 3600, UTC)
    return f"d{moment:%Y%m%d}", f"h{moment:%Y%m%d%H}"


def bucket_ends(hour: int) -> tuple[int, int]:
    """The UNIX second at which the UTC day and the UTC hour of `hour` (hours since the epoch) end: an
    aggregate bucket stays in Redis for its retention after its end."""
    return (hour // 24 + 1) * 86400, (hour + 1) * 3600


def settlement(record: UsageRecord, ticket: Ticket, retention: RetentionConfig) -> dict[str, Any]:
    """What the script does for `record` (JSON-serializable, so it can be spooled as it is)."""
    fields = record.__dict__  # as `request_log.emit`: a dict read costs half an attribute's from here
    tenant: str = fields["tenant"]
    now: float = fields["ts"]
    alerts = (
        [
            [spend_key(tenant, c.scope, c.window.id), c.scope, c.budget.period, c.limit, list(c.budget.alert_at)]
            for c in ticket.budgets
        ]
        if ticket is not NO_TICKET
        else []
    )
    counters = _spend_counters(tenant, fields["team"], fields["key_id"], int(now // 86400))
    if alerts:
        watched = {alert[0] for alert in alerts}
        spend: Any = [(key, expire_at, 1 if key in watched else 0) for key, expire_at, _ in counters]
    else:
        spend = counters  # orjson writes the cached tuples as the script's arrays
    hour = int(now // 3600)
    day_bucket, hour_bucket = _buckets(hour)
    day_end, hour_end = bucket_ends(hour)
    prefix = f"{fields['team'] or '-'}|{fields['model']}|{fields['deployment'] or '-'}|"
    total_tokens: int = fields["prompt_tokens"] + fields["completion_tokens"]
    settle = {
        "rid": fields["request_id"],
        "cost": fields["cost_micro_usd"],
        "now": int(now * 1000),
        "spend": spend,
        "agg": [
            [aggregate_key(tenant, day_bucket), day_end + int(retention.daily), prefix],
            [aggregate_key(tenant, hour_bucket), hour_end + int(retention.hourly), prefix],
        ],
        "m": [
            1,
            1 if fields["status"] >= 400 else 0,
            fields["prompt_tokens"],
            fields["completion_tokens"],
            fields["cached_tokens"],
            fields["cache_write_tokens"],
            fields["reasoning_tokens"],
            fields["cost_micro_usd"],
            1 if fields["estimated"] else 0,
        ],
        "tpm": [[key, interval, total_tokens - ticket.estimated_tokens] for key, interval in ticket.tpm],
        "alerts": alerts,
    }
    if ticket.lease is not None:
        settle["lease"] = ticket.lease
        settle["est"] = ticket.reserved
    return settle


Entry = tuple[UsageRecord, dict[str, Any]]
"""A record and its settlement (see `settlement()`)."""


def settlements(pairs: list[tuple[UsageRecord, Ticket]], retention: RetentionConfig) -> list[Entry]:
    return [(record, settlement(record, ticket, retention)) for record, ticket in pairs]


def tenant_chunks(items: list[Any], per_script: int) -> list[tuple[str, list[Any]]]:
    """`items` (tuples whose first member is a record) by tenant, in chunks of at most `per_script`."""
    by_tenant: dict[str, list[Any]] = {}
    for item in items:
        record: UsageRecord = item[0]
        by_tenant.setdefault(record.tenant, []).append(item)
    return [
        (tenant, mine[start : start + per_script])
        for tenant, mine in by_tenant.items()
        for start in range(0, len(mine), per_script)
    ]


def script_args(tenant: str, entries: list[Entry], dedupe_seconds: int, maxlen: int) -> list[Any]:
    """The EVALSHA arguments for one tenant's entries: each record's event JSON and settlement JSON."""
    keys: list[Any] = [len(entries) + 1, usage_stream_key(tenant)]
    args: list[Any] = [dedupe_seconds, maxlen, *reservation_keys(tenant)]
    for record, settle in entries:
        keys.append(dedupe_key(tenant, record.request_id))
        args.append(orjson.dumps(record))
        args.append(orjson.dumps(settle))
    return keys + args


def alerts_from(tenant: str, entries: list[Entry], reply: list[Any]) -> list[Alert]:
    """The thresholds crossed, from the script's [rid, spend key, spend after] triples for `entries`."""
    if not reply:
        return []
    settles = {record.request_id: settle for record, settle in entries}
    found: list[Alert] = []
    for rid, key, after in reply:
        settle = settles.get(rid.decode() if isinstance(rid, bytes) else rid)
        if settle is None:
            continue
        key = key.decode() if isinstance(key, bytes) else key
        for alert_key, scope, period, limit, thresholds in settle["alerts"]:
            if alert_key == key:
                after = int(after)
                for threshold in crossed_thresholds(after - settle["cost"], after, limit, tuple(thresholds)):
                    found.append(Alert(tenant, scope, period, threshold, after, limit))
    return found
