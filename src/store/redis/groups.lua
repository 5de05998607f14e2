-- Notification groups (src/store/groups.rs has the contract). A group is a hash
-- <prefix>:grp:<key> with `meta` (the caller's), `at` (last notified, ms) and `m:<incident id>`
-- (changes since then); <prefix>:groups is the set of group keys.
-- ARGV[1] the operation, ARGV[2] the store's prefix, then the operation's arguments.
local op = ARGV[1]
local p = ARGV[2]
if op == 'join' then
  -- ARGV[3] n, then n triples (key, meta, incident id). Answers {key, at or ''} per key first seen.
  local n = tonumber(ARGV[3])
  local out = {}
  local seen = {}
  for i = 0, n - 1 do
    local key, meta, inc = ARGV[4 + 3 * i], ARGV[5 + 3 * i], ARGV[6 + 3 * i]
    local h = p .. ':grp:' .. key
    redis.call('HSETNX', h, 'meta', meta)
    redis.call('HINCRBY', h, 'm:' .. inc, 1)
    if not seen[key] then
      seen[key] = true
      redis.call('SADD', p .. ':groups', key)
      table.insert(out, {key, redis.call('HGET', h, 'at') or ''})
    end
  end
  return out
elseif op == 'flushed' then
  -- ARGV[3] key, ARGV[4] at (ms), ARGV[5] n, then n triples (incident id, count, '1' if ended).
  local key = ARGV[3]
  local h = p .. ':grp:' .. key
  if redis.call('EXISTS', h) == 0 then
    return 0
  end
  local n = tonumber(ARGV[5])
  for i = 0, n - 1 do
    local f = 'm:' .. ARGV[6 + 3 * i]
    if redis.call('HGET', h, f) == ARGV[7 + 3 * i] then
      if ARGV[8 + 3 * i] == '1' then
        redis.call('HDEL', h, f)
      else
        redis.call('HSET', h, f, '0')
      end
    end
  end
  redis.call('HSET', h, 'at', ARGV[4])
  -- `meta` and `at` are the only fields left: no member.
  if redis.call('HLEN', h) <= 2 then
    redis.call('DEL', h)
    redis.call('SREM', p .. ':groups', key)
    return 0
  end
  -- 1 if a member is still changed (count over 0), else 0.
  local all = redis.call('HGETALL', h)
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'm:' and all[i + 1] ~= '0' then
      return 1
    end
  end
  return 0
end
return redis.error_reply('unknown group operation ' .. tostring(op))
