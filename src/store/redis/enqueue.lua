-- Queues one event, made outside a record call (a group's notification), to several
-- endpoints: per endpoint a delivery entry (layout in common.lua) at the tail of the lane,
-- due now if the lane was idle. Answers the pending count.
-- ARGV[1] the store's prefix, ARGV[2] lane, ARGV[3] event id, ARGV[4] incident JSON,
-- ARGV[5] envelope JSON, ARGV[6] n, then n pairs (endpoint, delivery id).
local p, lane, eid = ARGV[1], ARGV[2], ARGV[3]
local rest = ARGV[4] .. '\n' .. ARGV[5]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[6])
for i = 0, n - 1 do
  local q = p .. ':q:' .. ARGV[7 + 2 * i]
  local entry = make_entry(ARGV[8 + 2 * i], lane, eid, '', 'pending', '[]', rest)
  redis.call('INCR', q .. ':pending')
  if redis.call('RPUSH', q .. ':lane:' .. lane, entry) == 1 then
    redis.call('ZADD', q .. ':due', now, lane)
  end
end
return redis.call('INCRBY', p .. ':pending', n)
