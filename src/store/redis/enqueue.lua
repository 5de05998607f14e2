-- Queues one delivery of an event no transition made (a `delivery.dead` notice) at the tail of
-- its lane, counted, due now if the lane was empty. Returns the pending count.
-- ARGV[1] queue prefix, ARGV[2] the pending counter key, ARGV[3] the delivery id, ARGV[4] the
-- lane (incident id), ARGV[5] the event id, ARGV[6] the incident JSON, ARGV[7] the event
-- without its incident (JSON).
local q = ARGV[1]
local lane = ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local entry = make_entry(ARGV[3], lane, ARGV[5], '', 'pending', '[]', ARGV[6] .. '\n' .. ARGV[7])
redis.call('INCR', q .. ':pending')
if redis.call('RPUSH', q .. ':lane:' .. lane, entry) == 1 then
  redis.call('ZADD', q .. ':due', now, lane)
end
return redis.call('INCR', ARGV[2])
