-- Shared by the delivery-queue scripts (claim.lua, settle.lua): switchyard prepends this file
-- to each of them when it loads them (src/store/redis/mod.rs).

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

-- Appends finished delivery ids to the endpoint's log (`q`:log) and forgets the oldest past
-- `cap`, with their delivery records.
local function append_to_log(q, ids, cap)
  local len = 0
  local n = #ids
  local j = 1
  while j <= n do
    local k = math.min(n, j + 999)
    len = redis.call('RPUSH', q .. ':log', unpack(ids, j, k))
    j = k + 1
  end
  if len > cap then
    local old = redis.call('LPOP', q .. ':log', len - cap)
    local keys = {}
    for _, o in ipairs(old) do
      table.insert(keys, q .. ':d:' .. o)
    end
    local m = #keys
    local a = 1
    while a <= m do
      local b = math.min(m, a + 999)
      redis.call('DEL', unpack(keys, a, b))
      a = b + 1
    end
  end
end

