-- Records one batch of alerts atomically: checks that every incident the caller decided on
-- is at the version it assumed (else nothing is written, and 'conflict' is returned with
-- each such incident as it is: key, version ('0' none), JSON ('' none)), then
-- writes each incident's next state, its event history, and one delivery per routed endpoint
-- at the tail of the incident's lane.
-- The batch comes as flat arguments (no JSON to decode here; see `RecordBatch` in
-- redis/mod.rs):
-- ARGV[1] key prefix, ARGV[2] history cap, ARGV[3] number of checks n,
-- then n pairs (incident key, version read),
-- then per write: key, version, incident JSON, incident id, new (1/0), open delta,
-- expiry ('' keep, 'p' persist, else ms), history entry ('' none), the event without its
-- incident (JSON), event id, number of deliveries m, then m pairs (endpoint, delivery id);
-- last the leases the caller asks for: its lease token, e triples (endpoint, k, lease ms),
-- and e.
-- A delivery is an entry of its lane (the layout is in common.lua): its ids, state, attempts,
-- the incident JSON and the rest of the event.
-- A lane this batch creates (its first entry) is due at once. Up to k of an endpoint's new
-- lanes are leased to the caller instead (the recording instance holds their heads already
-- and sends them without claiming them): `leases` until now + lease and `owner` = token,
-- exactly as claim.lua leases a lane, so settle.lua settles them and, if the caller dies,
-- claim.lua takes them over once the lease runs out. A disabled endpoint leases nothing.
-- Returns {'ok', pending, open, leased delivery ids, endpoints that got a new due lane}, or
-- {'conflict', 0, 0, {key, version, JSON, ...}, {}}.
local p = ARGV[1]
local cap = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local last = #ARGV
local ne = tonumber(ARGV[last])
last = last - 1 - 3 * ne
local token = ARGV[last]
last = last - 1
local budget = {}
local lease_ms = {}
for x = last + 2, last + 1 + 3 * ne, 3 do
  budget[ARGV[x]] = tonumber(ARGV[x + 1])
  lease_ms[ARGV[x]] = tonumber(ARGV[x + 2])
end
local i = 4
local found = {}
for _ = 1, n do
  local v = redis.call('HGET', ARGV[i], 'v') or '0'
  if v ~= ARGV[i + 1] then
    local now_is = redis.call('HMGET', ARGV[i], 'v', 'j')
    table.insert(found, ARGV[i])
    table.insert(found, now_is[1] or '0')
    table.insert(found, now_is[2] or '')
  end
  i = i + 2
end
if #found > 0 then
  return {'conflict', 0, 0, found, {}}
end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now = string.format('%d', now_ms)
local added = 0
local open = 0
local per_endpoint = {}
-- New lanes per endpoint queue, as ZADD arguments (one call per queue at the end).
local new_lanes = {}
-- Lanes leased to the caller per endpoint queue, as ZADD and HSET arguments.
local leases = {}
local owners = {}
local lease_until = {}
local leased = {}
local due_endpoints = {}
local function may_lease(ep, q)
  local b = budget[ep]
  if not b or b <= 0 then
    return false
  end
  if leases[q] == nil then
    -- Nothing is leased at record on a disabled endpoint, nor while lanes wait in the due
    -- set: new lanes queue behind them (first in, first out), else a steady stream of new
    -- lanes leased at record would keep the actor from ever claiming the older ones.
    if redis.call('EXISTS', q .. ':disabled') == 1
      or #redis.call('ZRANGEBYSCORE', q .. ':due', '-inf', now, 'LIMIT', 0, 1) > 0 then
      budget[ep] = 0
      return false
    end
    leases[q] = {}
    owners[q] = {}
    lease_until[q] = string.format('%d', now_ms + lease_ms[ep])
  end
  budget[ep] = b - 1
  return true
end
while i <= last do
  local k, j, id, ttl, h = ARGV[i], ARGV[i + 2], ARGV[i + 3], ARGV[i + 6], ARGV[i + 7]
  local e, eid, m = ARGV[i + 8], ARGV[i + 9], tonumber(ARGV[i + 10])
  redis.call('HSET', k, 'v', ARGV[i + 1], 'j', j)
  local idk = p .. ':incid:' .. id
  local hk = p .. ':hist:' .. id
  if ARGV[i + 4] == '1' then
    redis.call('SET', idk, k)
  end
  open = open + tonumber(ARGV[i + 5])
  if h ~= '' then
    if redis.call('RPUSH', hk, h) > cap then
      redis.call('LTRIM', hk, -cap, -1)
    end
  end
  if ttl == 'p' then
    redis.call('PERSIST', k)
    redis.call('PERSIST', idk)
    redis.call('PERSIST', hk)
  elseif ttl ~= '' then
    redis.call('PEXPIRE', k, ttl)
    redis.call('PEXPIRE', idk, ttl)
    redis.call('PEXPIRE', hk, ttl)
  end
  i = i + 11
  for _ = 1, m do
    local ep = ARGV[i]
    local q = p .. ':q:' .. ep
    local d = ARGV[i + 1]
    -- The delivery is its lane entry (layout in common.lua): no record of its own.
    local entry = '2\n' .. d .. '\n' .. id .. '\n' .. eid .. '\n\npending\n[]\n' .. j .. '\n' .. e
    if redis.call('RPUSH', q .. ':lane:' .. id, entry) == 1 then
      if may_lease(ep, q) then
        table.insert(leases[q], lease_until[q])
        table.insert(leases[q], id)
        table.insert(owners[q], id)
        table.insert(owners[q], token)
        table.insert(leased, d)
      else
        local l = new_lanes[q]
        if not l then
          l = {}
          new_lanes[q] = l
          table.insert(due_endpoints, ep)
        end
        table.insert(l, now)
        table.insert(l, id)
      end
    end
    per_endpoint[q] = (per_endpoint[q] or 0) + 1
    added = added + 1
    i = i + 2
  end
end
for q, l in pairs(new_lanes) do
  local a = 1
  while a <= #l do
    local b = math.min(#l, a + 999)
    redis.call('ZADD', q .. ':due', unpack(l, a, b))
    a = b + 1
  end
end
for q, l in pairs(leases) do
  if #l > 0 then
    redis.call('ZADD', q .. ':leases', unpack(l))
    redis.call('HSET', q .. ':owner', unpack(owners[q]))
  end
end
for q, c in pairs(per_endpoint) do
  redis.call('INCRBY', q .. ':pending', c)
end
local pending = redis.call('INCRBY', p .. ':pending', added)
local total = open
if open ~= 0 then
  total = redis.call('INCRBY', p .. ':open', open)
else
  total = tonumber(redis.call('GET', p .. ':open') or '0')
end
return {'ok', pending, total, leased, due_endpoints}
