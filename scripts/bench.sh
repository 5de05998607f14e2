#!/usr/bin/env bash
# Load harness: switchyard against Alertmanager on this machine, in one run.
#
#   scripts/bench.sh                 # memory store (and file, redis when STORES includes them)
#   RUNS=3 DURATION=10 STORES="memory file redis" SUSTAIN_SECONDS=60 scripts/bench.sh
#   BASELINE_BIN=/path/to/older/switchyard STEPS="single batch e2e sustain" scripts/bench.sh
#
# BASELINE_BIN: a second build measured in the same run, step by step after this one (as
# `baseline-<store>`), so both see the same machine; the summary shows the two side by side
# with their ratio.
#
# For each system, each measurement is taken RUNS times on a fresh process and reported as
# median and spread (min-max):
#   1. single-alert ingest: wrk, 32 connections, labels never seen before (scripts/bench/ingest.lua);
#      for switchyard, then that every accepted alert arrives, once, and how long after the
#      load the last one did (`*_arrived`, `*_duplicates`, `*_drained_s`; `*_arrived_at_end`
#      when the load stopped, `*_delivered_per_s` over the load and the drain)
#   2. the same with 100 alerts per body
#   3. end-to-end latency POST -> receiver at a fixed rate (RATE, default 2000 alerts/s), and
#      that every event arrived, with duplicates counted at the receiver
#   4. memory (RSS) and idle CPU with 100,000 open incidents, created at MEM_RATE alerts/s
#      (default 10,000, in 100-alert bodies: the steady state), and again as fast as possible
#      (what a burst leaves behind once delivered)
#   5. (switchyard) SUSTAIN_RATE (default 20,000) alerts/s for DURATION seconds over 256
#      connections: ingest p50/p99, delivered by the end of the load, end-to-end p99 and max
#      (`rate_*`)
#   With the file store (its data in target/bench/file-data, on this machine's disk), 1 and 3
#   also record the bytes the process wrote to disk per accepted alert (`*_disk_bytes_per_alert`,
#   /proc/<pid>/io write_bytes: what reached the block layer, journal and snapshots).
#   6. (switchyard) single-alert ingest as in 1 with no route (nothing to deliver): what
#      ingest alone takes on these cores (`noroute_*`); and as in 1 through a grouped route
#      (`group_by: ['...']`, every alert its own group as in the Alertmanager config below,
#      group_wait 1s): what grouping costs ingest at worst (`grouped_single_*`), and the same
#      alerts as a storm into 10 groups (`group_by: [alertname, cluster]`, a `cluster` label of
#      10 values added: `grouped_storm_*`); the summary shows both ratios to 1 per store
#   7. (switchyard) sustained SUSTAIN_RATE alerts/s for SUSTAIN_SECONDS: delivered/accepted
#      and the lag at the end
#   8. (ceiling) 1, 5 and 6 against examples/bench_ceiling.rs: actix-web and awc as switchyard
#      uses them, with none of its logic (parse and answer; parse, answer and forward the
#      body to the receiver): the most any router on this stack gets from these cores while
#      sharing them with the load tool and the receiver
# Each run also records `calibration_ms`, the time of a fixed loop: the host's speed then.
# Alertmanager is Debian's prometheus-alertmanager (POST /api/v2/alerts, a webhook receiver,
# group_wait 0s, every alert its own group). Results: a Markdown table on stdout and in
# target/bench/results.md. Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

# STEPS picks measurements (default all): single batch e2e memory rate noroute grouped sustain ceiling
# am ("am": Alertmanager's 1-4), e.g. STEPS="rate sustain" SUSTAIN_SECONDS=60 scripts/bench.sh.
STEPS=${STEPS:-all}
want() { [[ " $STEPS " == *" all "* || " $STEPS " == *" $1 "* ]]; }
# After a system under test exits, the next measurement waits SETTLE seconds and then until
# the machine is idle (a 0.5 s window at most IDLE_BUSY_PCT busy, niced processes not
# counted), SETTLE_MAX seconds at most: the kernel may still be tearing down the last
# process's memory. (A run that started right after a process holding a million alerts had
# exited once had its p99 at 2,000/s go from 1 ms to 50-550 ms, with single deliveries held
# up to 1.2 s. That was switchyard's allocator asking for transparent huge pages: each fault
# in such a region compacted memory first. It is built without them now; see PERFORMANCE.md.)
SETTLE=${SETTLE:-2.5}
SETTLE_MAX=${SETTLE_MAX:-20}
IDLE_BUSY_PCT=${IDLE_BUSY_PCT:-10}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
RATE=${RATE:-2000}
STORES=${STORES-memory}   # empty: Alertmanager only
SUSTAIN_RATE=${SUSTAIN_RATE:-20000}
SUSTAIN_SECONDS=${SUSTAIN_SECONDS:-0}
INCIDENTS=${INCIDENTS:-100000}
MEM_RATE=${MEM_RATE:-10000}   # alerts/s for the memory measurement (0: as fast as possible)
OUT=target/bench
mkdir -p "$OUT"
RESULTS="$OUT/raw.tsv"
: >"$RESULTS"

need() {
  local cmd=$1 pkg=$2
  if ! command -v "$cmd" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      echo "==> installing $pkg (Debian package)" >&2
      apt-get update -qq >/dev/null && apt-get install -y -qq "$pkg" >/dev/null
    else
      echo "error: $cmd is missing: install it with 'sudo apt-get install $pkg'" >&2
      exit 1
    fi
  fi
}
need wrk wrk
need prometheus-alertmanager prometheus-alertmanager
need python3 python3
if [[ " $STORES " == *" redis "* ]]; then need redis-server redis-server; fi

echo "==> cargo build --release (switchyard, bench receiver, load generator)" >&2
cargo build --release --quiet --bin switchyard --example bench_receiver --example bench_loadgen \
  --example bench_ceiling
BIN=${BIN:-target/release/switchyard}   # another build to compare: BIN=/path/to/switchyard
BASELINE_BIN=${BASELINE_BIN:-}
# The builds under test: name:binary. The baseline runs each step right after this build.
VARIANTS=("switchyard:$BIN")
if [ -n "$BASELINE_BIN" ]; then
  [ -x "$BASELINE_BIN" ] || { echo "error: BASELINE_BIN=$BASELINE_BIN is not an executable" >&2; exit 1; }
  VARIANTS+=("baseline:$BASELINE_BIN")
fi
RECV=target/release/examples/bench_receiver
LOADGEN=target/release/examples/bench_loadgen
CEILING=target/release/examples/bench_ceiling

# shellcheck source=scripts/bench/common.sh
. scripts/bench/common.sh
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; } # system metric value
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
major_faults() { awk '/^pgmajfault / {print $2}' /proc/vmstat; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
io_write_bytes() { awk '/^write_bytes/ {print $2}' "/proc/$1/io"; }
# After a measurement of the file store: the bytes it wrote to disk per alert since $2
# (write_bytes then), once its background sync had a chance to run.
record_disk_per_alert() { # system label bytes_before alerts
  [[ $1 == *-file ]] || return 0
  sleep 1.5
  record "$1" "$2_disk_bytes_per_alert" "$(python3 -c "print(round(($(io_write_bytes "$SY_PID") - $3) / max(1, $4)))")"
}

# How long a fixed single-threaded loop takes now, in ms: the host's speed. On a shared VM
# it varies by tens of percent within minutes (steal time is not reported there), which
# moves every figure; it is recorded at the start of every run so that figures taken at
# different times can be compared. About 500 on the machine of docs/PERFORMANCE.md, quiet.
calibrate() {
  python3 -c "import time; t = time.perf_counter(); sum(range(3 * 10**7)); print(round((time.perf_counter() - t) * 1000))"
}

# Waits SETTLE seconds, then until the machine is idle or SETTLE_MAX seconds have passed.
settle() {
  sleep "$SETTLE"
  python3 - "$SETTLE_MAX" "$IDLE_BUSY_PCT" <<'PY' || echo "warning: the machine did not go idle within ${SETTLE_MAX}s" >&2
import sys, time
limit, busy_pct = float(sys.argv[1]), float(sys.argv[2])
def sample():
    with open("/proc/stat") as f:
        v = list(map(int, f.readline().split()[1:]))
    # user nice system idle iowait irq softirq steal: busy without nice (other people's builds)
    return v[0] + v[2] + v[5] + v[6] + v[7], sum(v)
end = time.monotonic() + limit
a = sample()
while time.monotonic() < end:
    time.sleep(0.5)
    b = sample()
    if 100 * (b[0] - a[0]) / max(1, b[1] - a[1]) <= busy_pct:
        sys.exit(0)
    a = b
sys.exit(1)
PY
}

PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

RECV_PORT=$(free_port)
$RECV "127.0.0.1:$RECV_PORT" >/dev/null 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$RECV_PORT/stats"
recv_reset() { curl -fsS -X POST "http://127.0.0.1:$RECV_PORT/reset" >/dev/null; }
recv_stat() { curl -fsS "http://127.0.0.1:$RECV_PORT/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
# Waits until the receiver holds $1 unique alerts or $2 seconds pass.
wait_unique() {
  local want=$1 secs=$2 i
  for i in $(seq 1 $((secs * 20))); do
    [ "$(recv_stat unique)" -ge "$want" ] && return 0
    sleep 0.05
  done
  return 1
}

REDIS_PID=""
REDIS_PORT=""
start_redis() {
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >/dev/null 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "error: redis-server did not start" >&2; exit 1
}

SY_PID=""
SY_PORT=""
start_switchyard() { # store [routes: the `default:` list, [hook] unless given] [binary] [more yaml]
  local store=$1 routes=${2:-[hook]} bin=${3:-$BIN} more=${4:-}
  SY_PORT=$(free_port)
  local store_yaml="store: { kind: memory }"
  if [ "$store" = file ]; then
    rm -rf "$OUT/file-data"
    store_yaml="store: { kind: file, path: \"$PWD/$OUT/file-data\" }"
  fi
  if [ "$store" = redis ]; then
    redis-cli -p "$REDIS_PORT" flushall >/dev/null
    store_yaml="store: { kind: redis, url: \"redis://127.0.0.1:$REDIS_PORT\", key_prefix: bench }"
  fi
  bench_config "$SY_PORT" "$store_yaml" "$RECV_PORT" "$routes" "$more" >"$OUT/switchyard.yaml"
  RUST_LOG=warn $bin serve -c "$OUT/switchyard.yaml" >/dev/null 2>"$OUT/switchyard.log" &
  SY_PID=$!
  PIDS+=("$SY_PID")
  wait_http "http://127.0.0.1:$SY_PORT/readyz"
}
stop_switchyard() { kill "$SY_PID" 2>/dev/null || true; wait "$SY_PID" 2>/dev/null || true; settle; }

AM_PID=""
AM_PORT=""
start_alertmanager() {
  AM_PORT=$(free_port)
  local dir
  dir=$(mktemp -d)
  cat >"$dir/am.yml" <<EOF
route:
  receiver: hook
  group_by: ['...']        # every alert its own group
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 1000h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:$RECV_PORT/am
        send_resolved: true
EOF
  prometheus-alertmanager --config.file "$dir/am.yml" --storage.path "$dir" \
    --web.listen-address "127.0.0.1:$AM_PORT" --cluster.listen-address= \
    --log.level=warn >/dev/null 2>"$OUT/alertmanager.log" &
  AM_PID=$!
  PIDS+=("$AM_PID")
  wait_http "http://127.0.0.1:$AM_PORT/-/ready"
}
stop_alertmanager() { kill "$AM_PID" 2>/dev/null || true; wait "$AM_PID" 2>/dev/null || true; settle; }

# The same stack with none of switchyard's logic (examples/bench_ceiling.rs): `parse`
# answers after parsing the body; `forward` also POSTs it to the receiver.
CEIL_PID=""
CEIL_PORT=""
start_ceiling() { # parse|forward
  CEIL_PORT=$(free_port)
  if [ "$1" = forward ]; then
    $CEILING forward "127.0.0.1:$CEIL_PORT" "http://127.0.0.1:$RECV_PORT/ceiling" >/dev/null 2>>"$OUT/ceiling.log" &
  else
    $CEILING parse "127.0.0.1:$CEIL_PORT" >/dev/null 2>>"$OUT/ceiling.log" &
  fi
  CEIL_PID=$!
  PIDS+=("$CEIL_PID")
  wait_http "http://127.0.0.1:$CEIL_PORT/readyz"
}
stop_ceiling() { kill "$CEIL_PID" 2>/dev/null || true; wait "$CEIL_PID" 2>/dev/null || true; settle; }

# wrk with the ingest script; records requests/s of 2xx answers, p50 and p99 (ms).
run_wrk() { # system label url path format alerts_per_body
  local sys=$1 label=$2 url=$3 path=$4 format=$5 per=$6 out wb0=0
  [[ $sys == *-file ]] && wb0=$(io_write_bytes "$SY_PID")
  out=$(ALERTS=$per FORMAT=$format TARGET_PATH=$path CLUSTERS=${CLUSTERS:-0} wrk -t2 -c32 -d"${DURATION}s" --latency \
    -s scripts/bench/ingest.lua "$url" 2>&1)
  local at_end=""
  [[ $sys == switchyard* || $sys == baseline* ]] && at_end=$(recv_stat unique)
  echo "$out" >>"$OUT/wrk.log"
  echo "$out" >"$OUT/wrk.last"
  python3 - "$sys" "$label" "$per" "$DURATION" "$OUT/wrk.last" >>"$RESULTS" <<'PY'
import re, sys
sys_, label, per, dur = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
out = open(sys.argv[5]).read()
def ms(s):
    m = re.match(r"([\d.]+)(us|ms|s|m|h)$", s)
    if not m:
        return float("nan")
    v, unit = m.groups()
    return float(v) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000, "h": 3600000}[unit]
total = int(re.search(r"(\d+) requests in", out).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
bad = int(bad.group(1)) if bad else 0
errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
secs = float(re.search(r"requests in ([\d.]+)(m?s)", out).group(1))
ok = (total - bad) / dur
print(f"{sys_}\t{label}_ok_req_s\t{ok:.0f}")
print(f"{sys_}\t{label}_alerts_s\t{ok*per:.0f}")
# The latency distribution's lines (a bare "50%" also ends wrk's "+/- Stdev" column).
p50 = ms(re.search(r"^\s+50%\s+(\S+)\s*$", out, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)\s*$", out, re.M).group(1))
print(f"{sys_}\t{label}_p50_ms\t{p50:.2f}")
print(f"{sys_}\t{label}_p99_ms\t{p99:.2f}")
print(f"{sys_}\t{label}_refused\t{bad}")
print(f"{sys_}\t{label}_accepted\t{(total - bad) * per}")
PY
  # switchyard: every accepted alert must arrive, once; how long after the load the last one
  # did (nothing is routed in the noroute runs). Alertmanager falls far behind under this
  # load; its duplicates are counted instead.
  if [[ ($sys == switchyard* || $sys == baseline* || $sys == ceiling) && $label != noroute* \
    && $label != grouped* ]]; then
    local accepted t0
    accepted=$(awk -F'\t' -v s="$sys" -v m="${label}_accepted" '$1 == s && $2 == m {v = $3} END {print v}' "$RESULTS")
    t0=$(date +%s.%N)
    wait_unique "$accepted" 120 || echo "warning: $sys $label: not every accepted alert arrived within 120 s" >&2
    local arrived drained
    arrived=$(recv_stat unique)
    drained=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))")
    record "$sys" "${label}_arrived" "$arrived"
    record "$sys" "${label}_drained_s" "$drained"
    if [ -n "$at_end" ]; then
      # Delivered while the load ran, and per second over the load and the drain after it:
      # a build that takes alerts in faster by leaving their delivery for later shows here.
      record "$sys" "${label}_arrived_at_end" "$at_end"
      record "$sys" "${label}_delivered_per_s" "$(python3 -c "print(round($arrived / ($DURATION + $drained)))")"
    fi
    record "$sys" "${label}_duplicates" "$(recv_stat duplicates)"
    record_disk_per_alert "$sys" "$label" "$wb0" "$accepted"
  fi
}

# Fixed-rate end-to-end latency: every alert must arrive; duplicates counted.
run_e2e() { # system url format
  local sys=$1 url=$2 format=$3 res accepted maj0 wb0=0
  [[ $sys == *-file ]] && wb0=$(io_write_bytes "$SY_PID")
  recv_reset
  maj0=$(major_faults)
  res=$($LOADGEN --url "$url" --format "$format" --rate "$RATE" --seconds "$DURATION" --connections 32)
  # Pages read back from disk on the whole machine during the load (binaries' code the
  # kernel had dropped): each one stalls whoever touched it.
  record "$sys" e2e_major_faults "$(($(major_faults) - maj0))"
  accepted=$(echo "$res" | python3 -c "import json,sys; print(json.load(sys.stdin)['ok_alerts'])")
  wait_unique "$accepted" 30 || true
  record "$sys" e2e_accepted "$accepted"
  record "$sys" e2e_arrived "$(recv_stat unique)"
  record "$sys" e2e_duplicates "$(recv_stat duplicates)"
  record "$sys" e2e_p50_ms "$(recv_stat p50_ms)"
  record "$sys" e2e_p99_ms "$(recv_stat p99_ms)"
  echo "    $sys e2e, worst ms per second sent: $(recv_stat worst_ms_by_second)" | tee -a "$OUT/e2e.log" >&2
  record "$sys" ingest_at_rate_p99_ms "$(echo "$res" | python3 -c "import json,sys; print(json.load(sys.stdin)['p99_ms'])")"
  record_disk_per_alert "$sys" e2e "$wb0" "$accepted"
}

# SUSTAIN_RATE alerts/s for DURATION s (switchyard): the ingest latency at that rate, and
# whether delivery kept pace.
run_at_rate() { # system url
  local sys=$1 url=$2 res accepted
  recv_reset
  res=$($LOADGEN --url "$url" --format switchyard --rate "$SUSTAIN_RATE" --seconds "$DURATION" \
    --connections 256 --threads 2)
  record "$sys" rate_arrived_at_end "$(recv_stat unique)"
  accepted=$(echo "$res" | python3 -c "import json,sys; print(json.load(sys.stdin)['ok_alerts'])")
  wait_unique "$accepted" 60 || true
  record "$sys" rate_accepted "$accepted"
  record "$sys" rate_ingest_p50_ms "$(echo "$res" | python3 -c "import json,sys; print(json.load(sys.stdin)['p50_ms'])")"
  record "$sys" rate_ingest_p99_ms "$(echo "$res" | python3 -c "import json,sys; print(json.load(sys.stdin)['p99_ms'])")"
  # The same p99 as switchyard measures it (from reading the request to answering it), which
  # leaves out the time the load tool waited for a core: the upper bound of the histogram
  # bucket (powers of two from 0.1 ms) that holds it. (The ceiling has no metrics.)
  [[ $sys == switchyard* || $sys == baseline* ]] && record "$sys" rate_server_p99_ms_at_most "$(curl -fsS "${url%/ingest/*}/metrics" | python3 -c "
import re, sys
text = sys.stdin.read()
b = sorted((float(le), float(n)) for le, n in re.findall(r'^switchyard_ingest_duration_seconds_bucket\{le=\"([0-9.e+-]+)\",source=\"bench\"\} (\S+)', text, re.M))
total = float(re.search(r'^switchyard_ingest_duration_seconds_count\{source=\"bench\"\} (\S+)', text, re.M).group(1))
print(next((round(le * 1000, 1) for le, n in b if n >= 0.99 * total), 'nan'))")"
  # Attempts that failed (each retried after the endpoint's first retry wait, 1 s here).
  [[ $sys == switchyard* || $sys == baseline* ]] && record "$sys" rate_failed_attempts "$(curl -fsS "${url%/ingest/*}/metrics" | python3 -c "
import re, sys
print(int(sum(float(n) for n in re.findall(r'^switchyard_deliveries_total\{[^}]*outcome=\"failed\"[^}]*\} (\S+)', sys.stdin.read(), re.M))))")"
  record "$sys" rate_arrived "$(recv_stat unique)"
  record "$sys" rate_e2e_p99_ms "$(recv_stat p99_ms)"
  record "$sys" rate_max_e2e_ms "$(recv_stat max_ms)"
  echo "    $sys rate, worst ms per second sent: $(recv_stat worst_ms_by_second)" | tee -a "$OUT/e2e.log" >&2
  record "$sys" rate_duplicates "$(recv_stat duplicates)"
}

# Memory and idle CPU with INCIDENTS open incidents, posted at RATE alerts/s (0: at once).
run_memory() { # system pid url format rate suffix
  local sys=$1 pid=$2 url=$3 format=$4 rate=$5 suffix=$6 base after t0 t1 hz
  base=$(rss_kib "$pid")
  recv_reset
  $LOADGEN --url "$url" --format "$format" --rate "$(python3 -c "print($rate/100)")" \
    --total "$INCIDENTS" --connections 32 --alerts-per-body 100 >/dev/null
  wait_unique "$INCIDENTS" 120 || true
  sleep 2
  after=$(rss_kib "$pid")
  record "$sys" "rss_baseline_mib$suffix" "$(python3 -c "print(round($base/1024,1))")"
  record "$sys" "rss_open_mib$suffix" "$(python3 -c "print(round($after/1024,1))")"
  record "$sys" "bytes_per_incident$suffix" "$(python3 -c "print(round(($after-$base)*1024/$INCIDENTS))")"
  record "$sys" "mem_arrived$suffix" "$(recv_stat unique)"
  [ -n "$suffix" ] && return 0
  hz=$(getconf CLK_TCK)
  t0=$(cpu_ticks "$pid"); sleep 10; t1=$(cpu_ticks "$pid")
  record "$sys" idle_cpu_cores "$(python3 -c "print(round(($t1-$t0)/$hz/10,3))")"
}

for store in $STORES; do
  want single || want batch || want e2e || want memory || want rate || want noroute \
    || want grouped || want sustain || continue
  [ "$store" = redis ] && start_redis
  for run in $(seq 1 "$RUNS"); do
    for v in "${VARIANTS[@]}"; do
      sys="${v%%:*}-$store"
      bin="${v#*:}"
      echo "==> $sys run $run/$RUNS" >&2
      record "$sys" calibration_ms "$(calibrate)"
      if want single; then
        start_switchyard "$store" "[hook]" "$bin"; recv_reset
        run_wrk "$sys" single "http://127.0.0.1:$SY_PORT" /ingest/bench switchyard 1
        stop_switchyard
      fi
      if want batch; then
        start_switchyard "$store" "[hook]" "$bin"; recv_reset
        run_wrk "$sys" batch100 "http://127.0.0.1:$SY_PORT" /ingest/bench switchyard 100
        stop_switchyard
      fi
      if want e2e; then
        start_switchyard "$store" "[hook]" "$bin"
        run_e2e "$sys" "http://127.0.0.1:$SY_PORT/ingest/bench" switchyard
        stop_switchyard
      fi
      if want memory; then
        start_switchyard "$store" "[hook]" "$bin"
        run_memory "$sys" "$SY_PID" "http://127.0.0.1:$SY_PORT/ingest/bench" switchyard "$MEM_RATE" ""
        stop_switchyard
        start_switchyard "$store" "[hook]" "$bin"
        run_memory "$sys" "$SY_PID" "http://127.0.0.1:$SY_PORT/ingest/bench" switchyard 0 _burst
        stop_switchyard
      fi
      if want rate; then
        start_switchyard "$store" "[hook]" "$bin"
        run_at_rate "$sys" "http://127.0.0.1:$SY_PORT/ingest/bench"
        stop_switchyard
      fi
      if want noroute; then
        start_switchyard "$store" "[]" "$bin"; recv_reset
        run_wrk "$sys" noroute_single "http://127.0.0.1:$SY_PORT" /ingest/bench switchyard 1
        stop_switchyard
      fi
      if want grouped; then
        start_switchyard "$store" "[]" "$bin" "routes:
  - to: [hook]
    group_by: ['...']
    group_wait: 1s
    group_interval: 1m
    repeat_interval: 1000h"
        recv_reset
        run_wrk "$sys" grouped_single "http://127.0.0.1:$SY_PORT" /ingest/bench switchyard 1
        stop_switchyard
        # A storm: the same alerts in 10 groups (`group_by: [alertname, cluster]`), what
        # grouping is for (one notification per group, not per alert).
        start_switchyard "$store" "[]" "$bin" "routes:
  - to: [hook]
    group_by: [alertname, cluster]
    group_wait: 1s
    group_interval: 1m
    repeat_interval: 1000h"
        recv_reset
        CLUSTERS=10 run_wrk "$sys" grouped_storm "http://127.0.0.1:$SY_PORT" /ingest/bench switchyard 1
        stop_switchyard
      fi
    done
  done
  if [ "$SUSTAIN_SECONDS" -gt 0 ] && want sustain; then
    for v in "${VARIANTS[@]}"; do
      sys="${v%%:*}-$store"
      bin="${v#*:}"
      echo "==> $sys sustained $SUSTAIN_RATE alerts/s for ${SUSTAIN_SECONDS}s" >&2
      start_switchyard "$store" "[hook]" "$bin"; recv_reset
      res=$($LOADGEN --url "http://127.0.0.1:$SY_PORT/ingest/bench" --format switchyard \
        --rate "$SUSTAIN_RATE" --seconds "$SUSTAIN_SECONDS" --connections 256 --threads 2)
      accepted=$(echo "$res" | python3 -c "import json,sys; print(json.load(sys.stdin)['ok_alerts'])")
      arrived_at_end=$(recv_stat unique)
      wait_unique "$accepted" 60 || true
      record "$sys" sustain_accepted "$accepted"
      record "$sys" sustain_accepted_per_s "$(echo "$res" | python3 -c "import json,sys; print(round(json.load(sys.stdin)['ok_per_s']))")"
      record "$sys" sustain_ingest_p99_ms "$(echo "$res" | python3 -c "import json,sys; print(json.load(sys.stdin)['p99_ms'])")"
      record "$sys" sustain_arrived_at_end "$arrived_at_end"
      record "$sys" sustain_arrived "$(recv_stat unique)"
      record "$sys" sustain_p99_e2e_ms "$(recv_stat p99_ms)"
      record "$sys" sustain_max_e2e_ms "$(recv_stat max_ms)"
      record "$sys" sustain_duplicates "$(recv_stat duplicates)"
      stop_switchyard
    done
  fi
done

# The ceiling: the same load against the same stack without switchyard's logic, to show how
# much of the machine the stack itself, the load tool and the receiver take.
if want ceiling; then
  for run in $(seq 1 "$RUNS"); do
    echo "==> ceiling run $run/$RUNS" >&2
    record ceiling calibration_ms "$(calibrate)"
    start_ceiling forward; recv_reset
    run_wrk ceiling single "http://127.0.0.1:$CEIL_PORT" /ingest/bench switchyard 1
    stop_ceiling
    start_ceiling forward
    run_at_rate ceiling "http://127.0.0.1:$CEIL_PORT/ingest/bench"
    stop_ceiling
    start_ceiling parse; recv_reset
    run_wrk ceiling noroute_single "http://127.0.0.1:$CEIL_PORT" /ingest/bench switchyard 1
    stop_ceiling
  done
fi

sys=alertmanager
want am || RUNS=0
for run in $(seq 1 "$RUNS"); do
  echo "==> $sys run $run/$RUNS" >&2
  record "$sys" calibration_ms "$(calibrate)"
  start_alertmanager; recv_reset
  run_wrk "$sys" single "http://127.0.0.1:$AM_PORT" /api/v2/alerts alertmanager 1
  sleep 1; record "$sys" wrk_duplicates "$(recv_stat duplicates)"
  stop_alertmanager
  start_alertmanager; recv_reset
  run_wrk "$sys" batch100 "http://127.0.0.1:$AM_PORT" /api/v2/alerts alertmanager 100
  stop_alertmanager
  start_alertmanager
  run_e2e "$sys" "http://127.0.0.1:$AM_PORT/api/v2/alerts" alertmanager
  stop_alertmanager
  start_alertmanager
  run_memory "$sys" "$AM_PID" "http://127.0.0.1:$AM_PORT/api/v2/alerts" alertmanager "$MEM_RATE" ""
  stop_alertmanager
  start_alertmanager
  run_memory "$sys" "$AM_PID" "http://127.0.0.1:$AM_PORT/api/v2/alerts" alertmanager 0 _burst
  stop_alertmanager
done

python3 scripts/bench/summarize.py "$RESULTS" | tee "$OUT/results.md"
