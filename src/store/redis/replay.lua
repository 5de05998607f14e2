-- Queues finished (delivered or dead) deliveries' events again, in the order given: each a new
-- delivery at the tail of its incident's lane, marked `replay_of` (claim.lua sends it even
-- though the event's dedup key exists), and re-enables the endpoint. Returns {pending, found
-- flags...}: 1 for each delivery queued again, 0 when no finished delivery has its id.
-- ARGV[1] queue prefix, ARGV[2] the pending counter key, then pairs: the delivery to replay,
-- its new delivery id.
-- A finished delivery is an entry of the log, found by one scan from its newest end (in
-- chunks, stopping once every id is found): an admin action, not on the ingest path.
local q = ARGV[1]
local wanted = {}
local missing = 0
for i = 3, #ARGV, 2 do
  if wanted[ARGV[i]] == nil then
    wanted[ARGV[i]] = false
    missing = missing + 1
  end
end
local len = redis.call('LLEN', q .. ':log')
local hi = len - 1
while hi >= 0 and missing > 0 do
  local lo = math.max(0, hi - 255)
  local chunk = redis.call('LRANGE', q .. ':log', lo, hi)
  for c = #chunk, 1, -1 do
    local e = chunk[c]
    local f, pos = entry_fields(e, 6)
    if f and wanted[f[1]] == false and (f[5] == 'delivered' or f[5] == 'dead') then
      wanted[f[1]] = {f[2], f[3], string.sub(e, pos)}
      missing = missing - 1
    end
  end
  hi = lo - 1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {0}
local queued = 0
for i = 3, #ARGV, 2 do
  local found = wanted[ARGV[i]]
  if found then
    local lane, eid, rest = found[1], found[2], found[3]
    local entry = make_entry(ARGV[i + 1], lane, eid, ARGV[i], 'pending', '[]', rest)
    redis.call('INCR', q .. ':pending')
    if redis.call('RPUSH', q .. ':lane:' .. lane, entry) == 1 then
      redis.call('ZADD', q .. ':due', now, lane)
    end
    queued = queued + 1
    table.insert(out, 1)
  else
    table.insert(out, 0)
  end
end
if queued > 0 then
  redis.call('DEL', q .. ':disabled')
  out[1] = redis.call('INCRBY', ARGV[2], queued)
else
  out[1] = tonumber(redis.call('GET', ARGV[2]) or '0')
end
return out
