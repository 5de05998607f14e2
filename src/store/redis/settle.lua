-- Settles a claimed delivery: stores its attempts and, if the lease is still this claim's,
-- either schedules the lane's retry or finishes the delivery (logged), moving the lane on.
-- ARGV[1] queue prefix, ARGV[2] lane, ARGV[3] delivery id, ARGV[4] lease token,
-- ARGV[5] action (delivered | retry | dead | gone | release: not attempted, due again now),
-- ARGV[6] retry wait ms,
-- ARGV[7] attempts JSON, ARGV[8] state, ARGV[9] dedup key, ARGV[10] dedup TTL ms,
-- ARGV[11] log capacity, ARGV[12] the pending counter key.
local q = ARGV[1]
local lane = ARGV[2]
local id = ARGV[3]
local action = ARGV[5]
if action == 'delivered' then
  redis.call('SET', ARGV[9], '1', 'PX', ARGV[10])
end
if redis.call('HGET', q .. ':owner', lane) ~= ARGV[4] then
  return {'stale', tonumber(redis.call('GET', ARGV[12]) or '0')}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dk = q .. ':d:' .. id
redis.call('HSET', dk, 'attempts', ARGV[7], 'state', ARGV[8])
redis.call('ZREM', q .. ':leases', lane)
redis.call('HDEL', q .. ':owner', lane)
if action == 'retry' or action == 'release' then
  local at = now + tonumber(ARGV[6])
  if action == 'retry' then
    redis.call('HSET', dk, 'next_at', at)
  end
  redis.call('ZADD', q .. ':due', at, lane)
  return {'retry', tonumber(redis.call('GET', ARGV[12]) or '0')}
end
local lk = q .. ':lane:' .. lane
if redis.call('LINDEX', lk, 0) == id then
  redis.call('LPOP', lk)
end
if action == 'gone' then
  redis.call('SET', q .. ':disabled', '1')
end
if redis.call('LLEN', lk) > 0 then
  redis.call('ZADD', q .. ':due', now, lane)
end
redis.call('RPUSH', q .. ':log', id)
local cap = tonumber(ARGV[11])
while redis.call('LLEN', q .. ':log') > cap do
  local old = redis.call('LPOP', q .. ':log')
  redis.call('DEL', q .. ':d:' .. old)
end
redis.call('DECR', q .. ':pending')
return {'done', redis.call('DECR', ARGV[12])}
