-- Durable timers (src/store/timers.rs has the contract). One set of timers is four keys under
-- ARGV[2] (<prefix>:tm:<set>): `:ready` a zset of keys by when a claim can take them (the due
-- time, or the lease's end while claimed), `:due` and `:payload` hashes of the armed due time
-- (ms) and payload, `:lease` a hash of the claimed ones' lease tokens.
-- ARGV[1] the operation, ARGV[2] the set's key prefix, then the operation's arguments.
-- Times are the caller's (ms since the epoch, as decimal strings).
local op = ARGV[1]
local s = ARGV[2]
local ready, due, payload, lease = s .. ':ready', s .. ':due', s .. ':payload', s .. ':lease'

local function arm(key, at, body)
  redis.call('ZADD', ready, at, key)
  redis.call('HSET', due, key, at)
  redis.call('HSET', payload, key, body)
  redis.call('HDEL', lease, key)
end

local function remove(key)
  redis.call('ZREM', ready, key)
  redis.call('HDEL', due, key)
  redis.call('HDEL', payload, key)
  return redis.call('HDEL', lease, key)
end

if op == 'schedule' then
  -- ARGV[3] key, ARGV[4] due, ARGV[5] payload, ARGV[6] replace | absent | earlier
  local key, at, when = ARGV[3], ARGV[4], ARGV[6]
  local current = redis.call('HGET', due, key)
  if current then
    if when == 'absent' then
      return 0
    end
    if when == 'earlier' and (redis.call('HEXISTS', lease, key) == 1
        or tonumber(current) <= tonumber(at)) then
      return 0
    end
  end
  arm(key, at, ARGV[5])
  return 1
elseif op == 'claim' then
  -- ARGV[3] now, ARGV[4] limit, ARGV[5] the lease's end, ARGV[6] lease token base
  local keys = redis.call('ZRANGEBYSCORE', ready, '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
  local out = {}
  for i, key in ipairs(keys) do
    local token = ARGV[6] .. ':' .. i
    redis.call('ZADD', ready, ARGV[5], key)
    redis.call('HSET', lease, key, token)
    table.insert(out, {key, redis.call('HGET', due, key) or '0',
      redis.call('HGET', payload, key) or '', token})
  end
  return out
elseif op == 'complete' then
  -- ARGV[3] key, ARGV[4] lease token, ARGV[5] '1' to re-arm, ARGV[6] due, ARGV[7] payload
  local key = ARGV[3]
  if redis.call('HGET', lease, key) ~= ARGV[4] then
    return 0
  end
  if ARGV[5] == '1' then
    arm(key, ARGV[6], ARGV[7])
  else
    remove(key)
  end
  return 1
elseif op == 'cancel' then
  -- ARGV[3] key
  local existed = redis.call('HEXISTS', due, ARGV[3])
  remove(ARGV[3])
  return existed
elseif op == 'next' then
  local first = redis.call('ZRANGE', ready, 0, 0, 'WITHSCORES')
  if #first == 0 then
    return false
  end
  return first[2]
end
return redis.error_reply('unknown timer operation ' .. tostring(op))
