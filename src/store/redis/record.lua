-- Records one batch of alerts atomically: checks that every incident read by the caller is
-- still at the version it read (else nothing is written and 'conflict' is returned), then
-- writes each incident's next state, its event history, and one delivery per routed endpoint
-- at the tail of the incident's lane.
-- ARGV[1] key prefix, ARGV[2] the batch (JSON, see `RecordBatch` in redis/mod.rs).
local p = ARGV[1]
local b = cjson.decode(ARGV[2])
for _, c in ipairs(b.checks) do
  local v = redis.call('HGET', c[1], 'v') or '0'
  if v ~= c[2] then
    return {'conflict', 0, 0}
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = 0
for _, w in ipairs(b.writes) do
  redis.call('HSET', w.k, 'v', w.v, 'j', w.j)
  local idk = p .. ':incid:' .. w.id
  local hk = p .. ':hist:' .. w.id
  if w.new then
    redis.call('SET', idk, w.k)
  end
  if w.open ~= 0 then
    redis.call('INCRBY', p .. ':open', w.open)
  end
  if w.h then
    redis.call('RPUSH', hk, w.h)
    redis.call('LTRIM', hk, -b.hist_cap, -1)
  end
  if w.ttl then
    redis.call('PEXPIRE', w.k, w.ttl)
    redis.call('PEXPIRE', idk, w.ttl)
    redis.call('PEXPIRE', hk, w.ttl)
  else
    redis.call('PERSIST', w.k)
    redis.call('PERSIST', idk)
    redis.call('PERSIST', hk)
  end
  if w.dlv then
    for _, d in ipairs(w.dlv) do
      local q = p .. ':q:' .. d[1]
      redis.call('HSET', q .. ':d:' .. d[2], 'event', w.e, 'eid', w.eid, 'lane', w.id,
        'attempts', '[]', 'state', 'pending')
      redis.call('INCR', q .. ':pending')
      if redis.call('RPUSH', q .. ':lane:' .. w.id, d[2]) == 1 then
        redis.call('ZADD', q .. ':due', now, w.id)
      end
      added = added + 1
    end
  end
end
local pending = redis.call('INCRBY', p .. ':pending', added)
local open = tonumber(redis.call('GET', p .. ':open') or '0')
return {'ok', pending, open}
