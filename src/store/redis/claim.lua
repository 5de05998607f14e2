-- Leases up to `limit` due lane heads of one endpoint. Lanes whose lease ran out (their
-- holder crashed or stalled) are due again first. A lane is in at most one of `due` and
-- `leases`, so its head is out at one instance at a time.
-- ARGV[1] queue prefix (<prefix>:q:<endpoint>), ARGV[2] limit, ARGV[3] lease ms,
-- ARGV[4] lease token, ARGV[5] the pending counter key, ARGV[6] the endpoint's dedup key
-- prefix (<prefix>:dedup:<endpoint>:), ARGV[7] the log capacity.
-- A head whose event was delivered already (its dedup key exists) is finished here, without
-- another request, and counted in the answer; a replay (`replay_of` set) is sent anyway.
-- Each head comes back as {lane, entry} (the entry layout is in common.lua).
local q = ARGV[1]
local limit = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local token = ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Times as strings, formatted once (a number argument to redis.call is formatted per use).
local now_s = string.format('%d', now)
local until_s = string.format('%d', now + lease)
local expired = redis.call('ZRANGEBYSCORE', q .. ':leases', '-inf', now_s, 'LIMIT', 0, 1000)
if #expired > 0 then
  local again = {}
  for _, lane in ipairs(expired) do
    table.insert(again, now_s)
    table.insert(again, lane)
  end
  each_chunk('ZREM', q .. ':leases', expired)
  each_chunk('HDEL', q .. ':owner', expired)
  each_chunk('ZADD', q .. ':due', again)
end
local out = {}
local dups = 0
local finished = 0
local leased = {}
local owned = {}
local logged = {}
if limit > 0 then
  local lanes = redis.call('ZRANGEBYSCORE', q .. ':due', '-inf', now_s, 'LIMIT', 0, limit)
  if #lanes > 0 then
    each_chunk('ZREM', q .. ':due', lanes)
  end
  -- First each lane's head; then one EXISTS over the heads' dedup keys: when none exists
  -- (the common case) no head needs a check of its own. A head is read as {entry or nil
  -- (unreadable: cannot be sent), event id to check or nil (a replay is sent anyway)}.
  local function read_head(head)
    local f = entry_fields(head, 4)
    if not f then
      return {nil, nil}
    end
    local check = nil
    if f[3] ~= '' and f[4] == '' then
      check = f[3]
    end
    return {head, check}
  end
  local heads = {}
  local dedup_keys = {}
  for i, lane in ipairs(lanes) do
    local lk = q .. ':lane:' .. lane
    local head = redis.call('LINDEX', lk, 0)
    local h = nil
    if head then
      h = read_head(head)
      if h[2] then
        table.insert(dedup_keys, ARGV[6] .. h[2])
      end
    end
    heads[i] = {lane, lk, head, h}
  end
  local any_delivered = false
  local k = 1
  while k <= #dedup_keys and not any_delivered do
    local j = math.min(#dedup_keys, k + 999)
    any_delivered = redis.call('EXISTS', unpack(dedup_keys, k, j)) > 0
    k = j + 1
  end
  for _, x in ipairs(heads) do
    local lane, lk, head, h = x[1], x[2], x[3], x[4]
    local check = any_delivered
    while head do
      local entry, eid = h[1], h[2]
      if entry and eid and check and redis.call('EXISTS', ARGV[6] .. eid) == 1 then
        redis.call('LPOP', lk)
        local f, rest = entry_fields(entry, 6)
        table.insert(logged, make_entry(f[1], f[2], f[3], f[4], 'delivered', f[6], string.sub(entry, rest)))
        finished = finished + 1
        dups = dups + 1
        head = redis.call('LINDEX', lk, 0)
      elseif entry then
        table.insert(leased, until_s)
        table.insert(leased, lane)
        table.insert(owned, lane)
        table.insert(owned, token)
        table.insert(out, {lane, entry})
        break
      else
        -- An unreadable entry cannot be sent; drop it from the lane.
        redis.call('LPOP', lk)
        finished = finished + 1
        head = redis.call('LINDEX', lk, 0)
      end
      if head then
        -- The next head of this lane was not in the first look: read and check it alone.
        h = read_head(head)
        check = true
      end
    end
  end
end
if #leased > 0 then
  each_chunk('ZADD', q .. ':leases', leased)
  each_chunk('HSET', q .. ':owner', owned)
end
if #logged > 0 then
  append_to_log(q, logged, tonumber(ARGV[7]))
end
if finished > 0 then
  redis.call('DECRBY', ARGV[5], finished)
  redis.call('DECRBY', q .. ':pending', finished)
end
local next_in = next_claimable_in(q, now)
local pending = tonumber(redis.call('GET', ARGV[5]) or '0')
local depth = tonumber(redis.call('GET', q .. ':pending') or '0')
return {out, next_in, redis.call('EXISTS', q .. ':disabled'), pending, depth, dups}
