"""The Lua scripts the rate limits run in Redis, and the key layout.

``LEASE`` keeps one consumer's bucket as a GCRA "theoretical arrival time"
(``tat``, milliseconds of Redis's own clock, so replicas' clocks never
matter): the bucket is full when ``tat <= now`` and holds
``floor((now + burst*T - tat) / T)`` tokens, ``T`` being the time one token
takes to come back. One call first charges ``debit`` (requests a replica
already let through on credit: charged unconditionally, so they may push the
bucket below empty and the refusals that follow pay them back), then grants
up to ``want`` tokens of what is left. The key expires when the bucket is
full again, so idle consumers cost Redis nothing.

Keys (``<prefix>`` is ``GATEHOUSE_GATEWAY_REDIS_PREFIX``):

- ``<prefix>rl:{<route>:<limit>:<consumer>}``: one bucket (a string, the tat);
  the hash tag makes the whole name the slot, so buckets spread over a
  Redis Cluster and each script touches one key in one slot;
- ``<prefix>rl:{replicas}``: a sorted set of the gateway processes (member:
  a random id, score: when its announcement expires), for the local fallback.
"""

from __future__ import annotations

# KEYS[1] bucket; ARGV: T (ms per token), burst, debit, want
# -> {granted, tokens left after the grant (<= 0: empty), ms until one token, ms until full}
LEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local T = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local debit = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
tat = tat + debit * T
local avail = math.floor((now + burst * T - tat) / T + 1e-9)
local granted = want
if avail < granted then granted = avail end
if granted < 0 then granted = 0 end
tat = tat + granted * T
local full = tat - now
if full > 0 then
  redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(full))
else
  redis.call('DEL', KEYS[1])
end
local wait = tat + T - (now + burst * T)
if wait < 0 then wait = 0 end
return {granted, avail - granted, math.ceil(wait), math.ceil(full)}
"""

# KEYS[1] the replicas' sorted set; ARGV: member, ttl (ms) -> processes announced now
ANNOUNCE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('ZCARD', KEYS[1])
"""


def bucket_key(prefix: str, route: str, limit: str, consumer: str) -> str:
    return f"{prefix}rl:{{{route}:{limit}:{consumer}}}"


def replicas_key(prefix: str) -> str:
    return f"{prefix}rl:{{replicas}}"
