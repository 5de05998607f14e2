-- wrk script: POST Alertmanager webhook v4 bodies with N alerts each (ALERTS env, default 1),
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
  n = 0
  headers = { ["Content-Type"] = "application/json" }
  local token = os.getenv("TOKEN")
  if token then headers["Authorization"] = "Bearer " .. token end
end

function request()
  local alerts = {}
  for i = 1, per_body do
    n = n + 1
    alerts[i] = string.format(
      '{"status":"firing","labels":{"alertname":"BenchAlert","instance":"%s-%d","job":"bench","severity":"warning"},' ..
      '"annotations":{"summary":"bench alert %d"},"startsAt":"2026-11-22T10:00:00Z","endsAt":"0001-01-01T00:00:00Z"}',
      prefix, n, n)
  end
  local body = '{"version":"4","status":"firing","receiver":"switchyard","groupLabels":{},"commonLabels":{},' ..
    '"commonAnnotations":{},"externalURL":"http://bench","alerts":[' .. table.concat(alerts, ",") .. ']}'
  return wrk.format("POST", "/ingest/" .. source, headers, body)
end
