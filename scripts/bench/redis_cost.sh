#!/usr/bin/env bash
# Redis server cost per alert of the redis store: commands and script calls per alert, Redis
# time per alert by command and by script, and the server's CPU time per alert. Unlike
# requests/s, these hardly depend on what else runs on the machine (CPU time does somewhat).
#
#   scripts/bench/redis_cost.sh [TOTAL] [ALERTS_PER_BODY]     # default 50000 1
#
# Starts its own redis-server (no persistence) and bench_receiver on free ports, runs the
# release build with the bench config of scripts/bench.sh (store: redis, every alert routed to
# one signed webhook), posts TOTAL new alerts with bench_loadgen (32 connections, as fast as
# it goes), waits until the receiver has every one, then reports (scripts/bench/redis_cost.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
TOTAL=${1:-50000}
PER_BODY=${2:-1}
# shellcheck source=scripts/bench/common.sh
. scripts/bench/common.sh
nice -n 19 cargo build --release --quiet --bin switchyard --example bench_receiver --example bench_loadgen
T=${CARGO_TARGET_DIR:-target}/release
OUT=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$OUT"' EXIT
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
PIDS+=($!)
RECV_PORT=$(free_port)
"$T/examples/bench_receiver" "127.0.0.1:$RECV_PORT" >/dev/null 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$RECV_PORT/stats"
SY_PORT=$(free_port)
bench_config "$SY_PORT" "store: { kind: redis, url: \"redis://127.0.0.1:$REDIS_PORT\", key_prefix: bench }" "$RECV_PORT" >"$OUT/switchyard.yaml"
RUST_LOG=warn "$T/switchyard" serve -c "$OUT/switchyard.yaml" >/dev/null 2>"$OUT/switchyard.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$SY_PORT/readyz"
python3 scripts/bench/redis_cost.py "$REDIS_PORT" begin
"$T/examples/bench_loadgen" --url "http://127.0.0.1:$SY_PORT/ingest/bench" --format switchyard \
  --rate 0 --total "$TOTAL" --connections 32 --alerts-per-body "$PER_BODY" >"$OUT/load.json"
unique() { curl -fsS "http://127.0.0.1:$RECV_PORT/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['unique'])"; }
for _ in $(seq 1200); do [ "$(unique)" -ge "$TOTAL" ] && break; sleep 0.1; done
sleep 0.3
echo "load: $(cat "$OUT/load.json")"
echo "receiver: $(curl -fsS "http://127.0.0.1:$RECV_PORT/stats")"
python3 scripts/bench/redis_cost.py "$REDIS_PORT" end "$TOTAL"
