"""The Lua scripts of admission: admit (one request, or a lease for many) and give a lease's remainder back.

Reservations live in two structures per tenant: the hash `held` (id → "amount|reserved key|...", the
id a request id or a lease id) and the zset of their expiry times, which the admit script sweeps.
"""

RELEASE_LUA = """
local function release(held_key, zset, id, amount)
  local held = redis.call('HGET', held_key, id)
  if not held then return end
  local parts = {}
  for part in string.gmatch(held, '[^|]+') do parts[#parts + 1] = part end
  local have = tonumber(parts[1])
  local take = have
  if amount ~= nil and amount < have then take = amount end
  for k = 2, #parts do redis.call('DECRBY', parts[k], string.format('%d', take)) end
  if take >= have then
    redis.call('HDEL', held_key, id)
    redis.call('ZREM', zset, id)
  else
    parts[1] = string.format('%d', have - take)
    redis.call('HSET', held_key, id, table.concat(parts, '|'))
  end
end
"""
"""`release(held, zset, id, amount)`: give back `amount` micro-USD (all of it when nil) of the reservation
`id` (a request id or a lease id): held[id] is "amount|reserved key|reserved key...". Shared by the
admission, lease-return and settlement scripts."""

# KEYS[1]: the tenant's reservation expiry zset (it routes the call: every key shares the tenant's hash
# tag). ARGV[1]: one JSON object, so redis-py encodes one argument instead of dozens: now (ms), rid,
# expires (ms), estimate (micro-USD), held (the reservation hash), limits [[key, limit, window_ms, cost,
# cost per leased request]], budgets [[spend key, reserved key, limit, ttl seconds]]; for a lease: want
# (requests asked for; 0: none), min, share, lid, lexpires (ms), lcost (micro-USD per leased request).
# Replies {1, n, ms used per limit...} (n: requests leased, 0 for this request alone) or a refusal
# {0, kind, index, ...}.
ADMIT_SCRIPT = (
    RELEASE_LUA
    + """
local a = cjson.decode(ARGV[1])
local now = a.now
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 100)
for _, rid in ipairs(expired) do
  release(a.held, KEYS[1], rid, nil)
  redis.call('ZREM', KEYS[1], rid)
end
local function charge(n, cost_at, estimate, id, expires)
  local out = {1, 0}
  for i, l in ipairs(a.limits) do
    local tat = tonumber(redis.call('GET', l[1]) or now)
    if tat < now then tat = now end
    tat = tat + n * l[cost_at] * l[3] / l[2]
    redis.call('SET', l[1], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
    out[#out + 1] = math.ceil(tat - now)
  end
  local total = n * estimate
  if #a.budgets > 0 and total > 0 then
    local held = {string.format('%d', total)}
    for _, b in ipairs(a.budgets) do
      redis.call('INCRBY', b[2], string.format('%d', total))
      if b[4] > 0 then redis.call('EXPIRE', b[2], b[4]) end
      held[#held + 1] = b[2]
    end
    redis.call('HSET', a.held, id, table.concat(held, '|'))
    redis.call('ZADD', KEYS[1], expires, id)
  end
  return out
end
if a.want > 0 then
  local n = a.want
  for _, l in ipairs(a.limits) do
    local limit, window, per = l[2], l[3], l[5]
    local tat = tonumber(redis.call('GET', l[1]) or now)
    if tat < now then tat = now end
    local room = math.min((now + window - tat) * limit / window, limit * a.share)
    if per > 0 then n = math.min(n, math.floor(room / per)) end
  end
  if a.lcost > 0 then
    for _, b in ipairs(a.budgets) do
      local free = b[3] - tonumber(redis.call('GET', b[1]) or 0) - tonumber(redis.call('GET', b[2]) or 0)
      n = math.min(n, math.floor(math.min(free, b[3] * a.share) / a.lcost))
    end
  end
  if n >= a.min then
    local out = charge(n, 5, a.lcost, a.lid, a.lexpires)
    out[2] = n
    return out
  end
end
for i, l in ipairs(a.limits) do
  local limit, window, cost = l[2], l[3], l[4]
  if cost > limit then return {0, 'too_large', i, -1} end
  local tat = tonumber(redis.call('GET', l[1]) or now)
  if tat < now then tat = now end
  local new = tat + cost * window / limit
  if new - window > now then return {0, 'rate', i, math.ceil(new - window - now)} end
end
local estimate = a.estimate
for j, b in ipairs(a.budgets) do
  local spend = tonumber(redis.call('GET', b[1]) or 0)
  local reserved = tonumber(redis.call('GET', b[2]) or 0)
  if spend + reserved + estimate > b[3] then return {0, 'budget', j, spend, reserved} end
end
return charge(1, 4, estimate, a.rid, a.expires)
"""
)

# Gives back what a lease did not use. KEYS[1]: the reservation zset; ARGV[1]: JSON with held, lid, now
# (ms), cost (micro-USD unused), limits [[key, units unused, ms per unit]].
RETURN_SCRIPT = (
    RELEASE_LUA
    + """
local a = cjson.decode(ARGV[1])
if a.cost > 0 then release(a.held, KEYS[1], a.lid, a.cost) end
for _, l in ipairs(a.limits) do
  local tat = tonumber(redis.call('GET', l[1]) or 0)
  if tat > 0 and l[2] > 0 then
    local new = tat - l[2] * l[3]
    if new > a.now then
      redis.call('SET', l[1], string.format('%.3f', new), 'PX', math.ceil(new - a.now) + 1000)
    else
      redis.call('DEL', l[1])
    end
  end
end
return 1
"""
)
