"""The server-side Lua scripts of the Redis ``LimitStore``: each runs atomically inside Redis, so a draw or a
reservation is all-or-nothing for the whole fleet, exactly like one call of the in-process store.

Layout: a bucket is a hash ``{tokens, ts}`` (``ts`` in seconds of the bucket clock: Redis ``TIME`` unless the
caller passes a time, which tests do); a missing bucket is full, so each bucket expires once it would have
refilled. A ledger is a hash ``{spent, reserved, requests, prompt, completion}`` that expires a day after its
budget period ends. Numbers are written with ``%.17g`` so no float loses precision on the way.

``acquire`` — KEYS: the buckets, then the ledger if any. ARGV: now ('' for Redis time), the number of buckets,
``capacity, per_second, amount`` per bucket, then ``amount, limit ('' none), expires_at`` for the ledger.
Reply: ``{code, bucket index, wait, spent + reserved}``: code 0 granted, 1 refused by the ledger, 2 by the
bucket at that index (wait: seconds, or 'inf').

``settle`` — same KEYS; ARGV: now, the number of buckets, ``capacity, per_second, amount`` per bucket, then
``release, spent, prompt, completion, expires_at, requests`` for the ledger. Buckets are adjusted without
condition (never above capacity); the ledger's reservation drops by ``release`` (a negative release adds one,
never below zero) and the sums grow. Used to settle, to undo a grant, and to merge what an instance counted
while Redis was down. Reply: ``spent + reserved``.
"""

from __future__ import annotations

_COMMON = """
local function now_from(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function num(x) return string.format('%.17g', x) end
local function level(key, cap, rate, now)
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  if not state[1] then return cap end
  return math.min(cap, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate)
end
local function store(key, tokens, cap, rate, now)
  redis.call('HSET', key, 'tokens', num(tokens), 'ts', num(now))
  local full_in = math.min(math.ceil(math.max(0, cap - tokens) / rate * 1000), 2592000000)
  redis.call('PEXPIRE', key, string.format('%d', full_in + 1000))
end
local function ledger_total(key)
  local v = redis.call('HMGET', key, 'spent', 'reserved')
  return tonumber(v[1] or '0'), tonumber(v[2] or '0')
end
local LEDGER_GRACE = 86400
"""

ACQUIRE = (
    _COMMON
    + """
local now = now_from(ARGV[1])
local n = tonumber(ARGV[2])
local ledger = KEYS[n + 1]
local known = ''
if ledger then
  local base = 3 + 3 * n
  local spent, reserved = ledger_total(ledger)
  known = num(spent + reserved)
  local limit = ARGV[base + 1]
  if limit ~= '' and spent + reserved + tonumber(ARGV[base]) > tonumber(limit) + 1e-9 then
    return {1, 0, '0', known}
  end
end
local levels = {}
local worst, worst_wait = 0, -1
for i = 1, n do
  local cap, rate, amount = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  local tokens = level(KEYS[i], cap, rate, now)
  levels[i] = tokens
  if tokens < amount then
    local wait = math.huge
    if amount <= cap then wait = (amount - tokens) / rate end
    if wait > worst_wait then worst, worst_wait = i, wait end
  end
end
if worst > 0 then
  local wait = 'inf'
  if worst_wait ~= math.huge then wait = num(worst_wait) end
  return {2, worst, wait, known}
end
for i = 1, n do
  local cap, rate, amount = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  store(KEYS[i], levels[i] - amount, cap, rate, now)
end
if ledger then
  local base = 3 + 3 * n
  local amount = tonumber(ARGV[base])
  local reserved = tonumber(redis.call('HINCRBYFLOAT', ledger, 'reserved', num(amount)))
  redis.call('HINCRBY', ledger, 'requests', 1)
  redis.call('EXPIREAT', ledger, string.format('%d', math.ceil(tonumber(ARGV[base + 2])) + LEDGER_GRACE))
  local spent = ledger_total(ledger)
  known = num(spent + reserved)
end
return {0, 0, '0', known}
"""
)

SETTLE = (
    _COMMON
    + """
local now = now_from(ARGV[1])
local n = tonumber(ARGV[2])
for i = 1, n do
  local cap, rate, amount = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  store(KEYS[i], math.min(cap, level(KEYS[i], cap, rate, now) - amount), cap, rate, now)
end
local ledger = KEYS[n + 1]
if not ledger then return '' end
local base = 3 + 3 * n
local spent, reserved = ledger_total(ledger)
reserved = math.max(0, reserved - tonumber(ARGV[base]))
spent = spent + tonumber(ARGV[base + 1])
redis.call('HSET', ledger, 'reserved', num(reserved), 'spent', num(spent))
redis.call('HINCRBY', ledger, 'prompt', ARGV[base + 2])
redis.call('HINCRBY', ledger, 'completion', ARGV[base + 3])
redis.call('HINCRBY', ledger, 'requests', ARGV[base + 5])
redis.call('EXPIREAT', ledger, string.format('%d', math.ceil(tonumber(ARGV[base + 4])) + LEDGER_GRACE))
return num(spent + reserved)
"""
)

SCRIPTS = {"acquire": ACQUIRE, "settle": SETTLE}
