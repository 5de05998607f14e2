-- Queues a finished (delivered or dead) delivery's event again: a new delivery at the tail of
-- the incident's lane, marked `replay_of` (claim.lua sends it even though the event's dedup
-- key exists), and re-enables the endpoint. Returns {1, pending} or {0, pending} when there is
-- no finished delivery with this id.
-- ARGV[1] queue prefix, ARGV[2] the delivery to replay, ARGV[3] the new delivery id,
-- ARGV[4] the pending counter key.
local q = ARGV[1]
local d = redis.call('HMGET', q .. ':d:' .. ARGV[2], 'event', 'eid', 'lane', 'state', 'inc', 'env')
if not (d[1] or d[5]) or not d[3] or (d[4] ~= 'delivered' and d[4] ~= 'dead') then
  return {0, tonumber(redis.call('GET', ARGV[4]) or '0')}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if d[1] then
  redis.call('HSET', q .. ':d:' .. ARGV[3], 'event', d[1], 'eid', d[2] or '', 'lane', d[3],
    'attempts', '[]', 'state', 'pending', 'replay_of', ARGV[2])
else
  redis.call('HSET', q .. ':d:' .. ARGV[3], 'inc', d[5], 'env', d[6] or '', 'eid', d[2] or '',
    'lane', d[3], 'attempts', '[]', 'state', 'pending', 'replay_of', ARGV[2])
end
redis.call('INCR', q .. ':pending')
if redis.call('RPUSH', q .. ':lane:' .. d[3], ARGV[3]) == 1 then
  redis.call('ZADD', q .. ':due', now, d[3])
end
redis.call('DEL', q .. ':disabled')
return {1, redis.call('INCR', ARGV[4])}
