-- Queues a finished (delivered or dead) delivery's event again: a new delivery at the tail of
-- the incident's lane, marked `replay_of` (claim.lua sends it even though the event's dedup
-- key exists), and re-enables the endpoint. Returns {1, pending} or {0, pending} when there is
-- no finished delivery with this id.
-- ARGV[1] queue prefix, ARGV[2] the delivery to replay, ARGV[3] the new delivery id,
-- ARGV[4] the pending counter key.
-- A finished delivery is an entry of the log (found by a scan from its newest end, in chunks:
-- an admin action, not on the ingest path).
local q = ARGV[1]
local old = ARGV[2]
local lane = nil
local rest = nil
local eid = nil
local want = '2\n' .. old .. '\n'
local len = redis.call('LLEN', q .. ':log')
local hi = len - 1
while hi >= 0 and not lane do
  local lo = math.max(0, hi - 255)
  local chunk = redis.call('LRANGE', q .. ':log', lo, hi)
  for c = #chunk, 1, -1 do
    local e = chunk[c]
    if string.sub(e, 1, #want) == want then
      local f, pos = entry_fields(e, 6)
      if f and (f[5] == 'delivered' or f[5] == 'dead') then
        lane, eid, rest = f[2], f[3], string.sub(e, pos)
      end
      break
    end
  end
  hi = lo - 1
end
if not lane then
  return {0, tonumber(redis.call('GET', ARGV[4]) or '0')}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local entry = make_entry(ARGV[3], lane, eid, old, 'pending', '[]', rest)
redis.call('INCR', q .. ':pending')
if redis.call('RPUSH', q .. ':lane:' .. lane, entry) == 1 then
  redis.call('ZADD', q .. ':due', now, lane)
end
redis.call('DEL', q .. ':disabled')
return {1, redis.call('INCR', ARGV[4])}
