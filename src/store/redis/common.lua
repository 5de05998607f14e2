-- Shared by the delivery-queue scripts (claim.lua, settle.lua, replay.lua): switchyard
-- prepends this file to each of them when it loads them (src/store/redis/mod.rs).
--
-- A delivery is one entry of its lane list (`q`:lane:<incident id>) while unfinished and one
-- entry of the endpoint's log (`q`:log) once finished; its fields, separated by '\n' (JSON
-- written by serde_json has no raw newline; ids are generated):
--   '2', delivery id, lane, event id, replay_of ('' none), state, attempts JSON,
--   incident JSON, the event without its incident (JSON)
-- (record.lua writes the same layout.)

-- The first `n` fields of entry `s` after its marker, and where the rest begins.
local function entry_fields(s, n)
  local out = {}
  local pos = 3
  for k = 1, n do
    local e = string.find(s, '\n', pos, true)
    if not e then
      return nil, 0
    end
    out[k] = string.sub(s, pos, e - 1)
    pos = e + 1
  end
  return out, pos
end

-- An entry from its parts (`rest`: the incident JSON and the envelope, '\n' between).
local function make_entry(id, lane, eid, replay_of, state, attempts, rest)
  return '2\n' .. id .. '\n' .. lane .. '\n' .. eid .. '\n' .. replay_of .. '\n' .. state .. '\n'
    .. attempts .. '\n' .. rest
end

-- Runs `cmd key ...items` in chunks (Lua's unpack has a bound).
local function each_chunk(cmd, key, items)
  local n = #items
  local i = 1
  while i <= n do
    local j = math.min(n, i + 999)
    redis.call(cmd, key, unpack(items, i, j))
    i = j + 1
  end
end

-- Appends finished deliveries (entries) to the endpoint's log (`q`:log) and forgets the oldest
-- past `cap`.
local function append_to_log(q, entries, cap)
  local len = 0
  local n = #entries
  local j = 1
  while j <= n do
    local k = math.min(n, j + 999)
    len = redis.call('RPUSH', q .. ':log', unpack(entries, j, k))
    j = k + 1
  end
  if len > cap then
    redis.call('LTRIM', q .. ':log', -cap, -1)
  end
end

-- Milliseconds until the queue `q` has a lane to hand out: its first due lane or its first
-- lease to run out, whichever is sooner (0: now; -1: none). `now` is in ms (Redis clock).
local function next_claimable_in(q, now)
  local next_in = -1
  local d = redis.call('ZRANGE', q .. ':due', 0, 0, 'WITHSCORES')
  if d[2] then
    next_in = math.max(0, tonumber(d[2]) - now)
  end
  if next_in ~= 0 then
    local l = redis.call('ZRANGE', q .. ':leases', 0, 0, 'WITHSCORES')
    if l[2] then
      local li = math.max(0, tonumber(l[2]) - now)
      if next_in < 0 or li < next_in then
        next_in = li
      end
    end
  end
  return next_in
end
