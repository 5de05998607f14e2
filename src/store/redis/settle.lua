-- Settles a batch of claimed deliveries of one endpoint (each one as `settle` did alone):
-- stores each one's attempts and, if its lease is still that claim's, either schedules the
-- lane's retry or finishes the delivery (logged), moving the lane on. Each delivery is judged
-- on its own: a stale lease or a retry of one leaves the others as they are.
-- ARGV[1] queue prefix, ARGV[2] dedup TTL ms, ARGV[3] log capacity, ARGV[4] the pending
-- counter key, ARGV[5] the endpoint's dedup key prefix (<prefix>:dedup:<endpoint>:),
-- then per delivery 8 arguments: lane, delivery id, lease token,
-- action (delivered | retry | dead | gone | release: not attempted, due again now),
-- retry wait ms, attempts JSON, state, event id.
-- Returns {pending, {delivery ids whose lease was no longer theirs}, ms until a lane can be
-- claimed (0 now, -1 none waits), the endpoint's unfinished deliveries}.
local q = ARGV[1]
local dedup_ttl = ARGV[2]
local cap = tonumber(ARGV[3])
local pending_key = ARGV[4]
local dedup = ARGV[5]
local owner = q .. ':owner'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Formatted once (a number argument to redis.call is formatted per use).
local now_s = string.format('%d', now)
local seen = {}
local released = {}
local due = {}
local logged = {}
local stale = {}
local disable = false

-- The lease tokens of the batch's lanes, in one read.
local lanes = {}
local i = 6
local last = #ARGV
while i <= last do
  table.insert(lanes, ARGV[i])
  i = i + 8
end
local owners = {}
local a = 1
while a <= #lanes do
  local b = math.min(#lanes, a + 999)
  local got = redis.call('HMGET', owner, unpack(lanes, a, b))
  for j = a, b do
    owners[j] = got[j - a + 1]
  end
  a = b + 1
end
local n = 0
i = 6
while i <= last do
  n = n + 1
  local lane, id, token, action = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local wait, attempts, state, eid = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]
  i = i + 8
  -- The event's dedup key is read only by claim.lua, for a lane head about to be handed out
  -- (a replay skips it). A delivery settled delivered under its valid lease leaves its lane
  -- in this same script (LPOP below): it is never a head again and no other delivery of the
  -- endpoint carries its event (one per endpoint per event; a replay is a new delivery marked
  -- replay_of), so its key would never be read and is not written. It is written when the
  -- lease was stale (another holder may have the head now: its next claim finishes it
  -- without a second request) or when the entry could not be removed.
  local mark_delivered = action == 'delivered'
  if seen[lane] or owners[n] ~= token then
    table.insert(stale, id)
  else
    seen[lane] = true
    table.insert(released, lane)
    local lk = q .. ':lane:' .. lane
    if action == 'retry' or action == 'release' then
      local at = now_s
      if action == 'retry' then
        at = string.format('%d', now + tonumber(wait))
      end
      local head = redis.call('LINDEX', lk, 0)
      if head then
        local f, rest = entry_fields(head, 6)
        if f and f[1] == id then
          redis.call('LSET', lk, 0, make_entry(id, f[2], f[3], f[4], state, attempts, string.sub(head, rest)))
        end
      end
      table.insert(due, at)
      table.insert(due, lane)
    else
      local head = redis.call('LPOP', lk)
      local done = nil
      if head then
        local f, rest = entry_fields(head, 6)
        if f and f[1] == id then
          done = make_entry(id, f[2], f[3], f[4], state, attempts, string.sub(head, rest))
        end
      end
      if head and not done then
        -- Not this delivery's lane head (cannot happen under a valid lease): put it back.
        redis.call('LPUSH', lk, head)
      end
      if action == 'gone' then
        disable = true
      end
      if redis.call('LLEN', lk) > 0 then
        table.insert(due, now_s)
        table.insert(due, lane)
      end
      if done then
        table.insert(logged, done)
        mark_delivered = false
      end
    end
  end
  if mark_delivered then
    redis.call('SET', dedup .. eid, '1', 'PX', dedup_ttl)
  end
end
if #released > 0 then
  each_chunk('ZREM', q .. ':leases', released)
  each_chunk('HDEL', owner, released)
end
if #due > 0 then
  each_chunk('ZADD', q .. ':due', due)
end
if disable then
  redis.call('SET', q .. ':disabled', '1')
end
local pending
if #logged > 0 then
  append_to_log(q, logged, cap)
  redis.call('DECRBY', q .. ':pending', #logged)
  pending = redis.call('DECRBY', pending_key, #logged)
else
  pending = tonumber(redis.call('GET', pending_key) or '0')
end
-- When a lane can be claimed next (ms from now; 0: now, a head due or a lease run out; -1:
-- none waits): the caller claims again only when it is now, else it looks then.
local next_in = next_claimable_in(q, now)
return {pending, stale, next_in, tonumber(redis.call('GET', q .. ':pending') or '0')}
