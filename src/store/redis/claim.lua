-- Leases up to `limit` due lane heads of one endpoint. Lanes whose lease ran out (their
-- holder crashed or stalled) are due again first. A lane is in at most one of `due` and
-- `leases`, so its head is out at one instance at a time.
-- ARGV[1] queue prefix (<prefix>:q:<endpoint>), ARGV[2] limit, ARGV[3] lease ms,
-- ARGV[4] lease token, ARGV[5] the pending counter key, ARGV[6] the endpoint's dedup key
-- prefix (<prefix>:dedup:<endpoint>:), ARGV[7] the log capacity.
-- A head whose event was delivered already (its dedup key exists) is finished here, without
-- another request, and counted in the answer; a replay (`replay_of` set) is sent anyway.
local q = ARGV[1]
local limit = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local token = ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', q .. ':leases', '-inf', now, 'LIMIT', 0, 1000)
for _, lane in ipairs(expired) do
  redis.call('ZREM', q .. ':leases', lane)
  redis.call('HDEL', q .. ':owner', lane)
  redis.call('ZADD', q .. ':due', now, lane)
end
local out = {}
local dups = 0
if limit > 0 then
  local lanes = redis.call('ZRANGEBYSCORE', q .. ':due', '-inf', now, 'LIMIT', 0, limit)
  for _, lane in ipairs(lanes) do
    redis.call('ZREM', q .. ':due', lane)
    local lk = q .. ':lane:' .. lane
    local head = redis.call('LINDEX', lk, 0)
    while head do
      local d = redis.call('HMGET', q .. ':d:' .. head, 'event', 'attempts', 'eid', 'replay_of')
      if d[1] and d[3] and not d[4] and redis.call('EXISTS', ARGV[6] .. d[3]) == 1 then
        redis.call('HSET', q .. ':d:' .. head, 'state', 'delivered')
        redis.call('LPOP', lk)
        redis.call('RPUSH', q .. ':log', head)
        while redis.call('LLEN', q .. ':log') > tonumber(ARGV[7]) do
          local old = redis.call('LPOP', q .. ':log')
          redis.call('DEL', q .. ':d:' .. old)
        end
        redis.call('DECR', ARGV[5])
        redis.call('DECR', q .. ':pending')
        dups = dups + 1
        head = redis.call('LINDEX', lk, 0)
      elseif d[1] then
        redis.call('ZADD', q .. ':leases', now + lease, lane)
        redis.call('HSET', q .. ':owner', lane, token)
        table.insert(out, {lane, head, d[1], d[2] or '[]'})
        break
      else
        -- A delivery without its record cannot be sent; drop it from the lane.
        redis.call('LPOP', lk)
        redis.call('DECR', ARGV[5])
        redis.call('DECR', q .. ':pending')
        head = redis.call('LINDEX', lk, 0)
      end
    end
  end
end
local next_in = -1
local d = redis.call('ZRANGE', q .. ':due', 0, 0, 'WITHSCORES')
if d[2] then
  next_in = math.max(0, tonumber(d[2]) - now)
end
local l = redis.call('ZRANGE', q .. ':leases', 0, 0, 'WITHSCORES')
if l[2] then
  local li = math.max(0, tonumber(l[2]) - now)
  if next_in < 0 or li < next_in then
    next_in = li
  end
end
local pending = tonumber(redis.call('GET', ARGV[5]) or '0')
local depth = tonumber(redis.call('GET', q .. ':pending') or '0')
return {out, next_in, redis.call('EXISTS', q .. ':disabled'), pending, depth, dups}
