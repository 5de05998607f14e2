-- wrk script: POST Alertmanager webhook v4 bodies (FORMAT=switchyard, to /ingest/SOURCE) or
-- Alertmanager's own /api/v2/alerts arrays (FORMAT=alertmanager, TARGET_PATH=/api/v2/alerts)
-- with N alerts each (ALERTS env, default 1),
-- labels never seen before: every thread is seeded differently and numbers its own alerts,
-- and each run has its own prefix, so no alert repeats within or across runs.
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + tid * 7919 + math.floor(os.clock() * 1e6))
  prefix = string.format("%x-%d-%x", os.time(), tid, math.random(0, 2147483647))
  per_body = tonumber(os.getenv("ALERTS") or "1")
  source = os.getenv("SOURCE") or "bench"
  format = os.getenv("FORMAT") or "switchyard"
  path = os.getenv("TARGET_PATH") or ("/ingest/" .. source)
  -- CLUSTERS=N (default 0: none): each alert also has a label `cluster` of N values, for a
  -- grouped route that collects them into N groups.
  clusters = tonumber(os.getenv("CLUSTERS") or "0")
  n = 0
  headers = { ["Content-Type"] = "application/json" }
  local token = os.getenv("TOKEN")
  if token then headers["Authorization"] = "Bearer " .. token end
end

function request()
  local alerts = {}
  for i = 1, per_body do
    n = n + 1
    local cluster = ""
    if clusters > 0 then cluster = string.format('"cluster":"c%d",', n % clusters) end
    local labels = string.format(
      '"labels":{"alertname":"BenchAlert",%s"instance":"%s-%d","job":"bench","severity":"warning"},' ..
      '"annotations":{"summary":"bench alert %d"}', cluster, prefix, n, n)
    if format == "alertmanager" then
      alerts[i] = '{' .. labels .. ',"generatorURL":"http://bench/graph"}'
    else
      alerts[i] = '{"status":"firing",' .. labels ..
        ',"startsAt":"2026-11-22T10:00:00Z","endsAt":"0001-01-01T00:00:00Z"}'
    end
  end
  local body
  if format == "alertmanager" then
    -- Alertmanager's own POST /api/v2/alerts body: an array of alerts.
    body = '[' .. table.concat(alerts, ",") .. ']'
  else
    body = '{"version":"4","status":"firing","receiver":"switchyard","groupLabels":{},"commonLabels":{},' ..
      '"commonAnnotations":{},"externalURL":"http://bench","alerts":[' .. table.concat(alerts, ",") .. ']}'
  end
  return wrk.format("POST", path, headers, body)
end
