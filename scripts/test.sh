#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and end-to-end tests.
# Usage: scripts/test.sh
# Needs a Rust toolchain, redis-server, prometheus, amtool, chromium and chromium-driver
# (installed here with apt-get when missing and run as root), python3 with the PyPI package
# standardwebhooks (pip install when missing), and axe-core (npm install under target/axe-core
# when missing). A throwaway redis-server (no persistence) is started for the tests on 127.0.0.1:6379
# when nothing answers there, else on a free port; its URL is exported as
# SWITCHYARD_TEST_REDIS_URL and it is stopped at the end. Set SWITCHYARD_TEST_REDIS_URL
# yourself to use an existing server instead (tests use random key prefixes).
set -euo pipefail
cd "$(dirname "$0")/.."

port_answers() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start_test_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "==> installing redis-server (apt-get)"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
      echo "error: redis-server is needed for the redis store tests and is not installed." >&2
      echo "       Install it (Debian/Ubuntu: sudo apt-get install -y redis-server), or set" >&2
      echo "       SWITCHYARD_TEST_REDIS_URL=redis://HOST:PORT to use a running server." >&2
      exit 1
    fi
  fi
  REDIS_DIR="$(mktemp -d)"
  trap stop_test_redis EXIT
  local port=6379 started=
  for _ in 1 2 3 4 5; do
    while port_answers "$port"; do
      port=$((20000 + RANDOM % 40000))
    done
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
      --daemonize yes --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" \
      --dir "$REDIS_DIR" || true
    for _ in $(seq 1 50); do
      if [ -s "$REDIS_DIR/redis.pid" ] && port_answers "$port"; then
        started=1
        break
      fi
      sleep 0.1
    done
    [ -n "$started" ] && break
    # Someone took the port in between: try another one.
    port=$((20000 + RANDOM % 40000))
  done
  if [ -z "$started" ]; then
    echo "error: could not start redis-server; see $REDIS_DIR/redis.log" >&2
    cat "$REDIS_DIR/redis.log" >&2 || true
    exit 1
  fi
  export SWITCHYARD_TEST_REDIS_URL="redis://127.0.0.1:$port"
  echo "==> test redis-server on $SWITCHYARD_TEST_REDIS_URL"
}

stop_test_redis() {
  if [ -s "$REDIS_DIR/redis.pid" ]; then
    local pid
    pid="$(cat "$REDIS_DIR/redis.pid")"
    kill "$pid" 2>/dev/null || true
    # Wait (up to 10 s) for it to exit: it writes its last log lines while shutting down,
    # and removing the directory under it fails ("Directory not empty").
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -rf "$REDIS_DIR" || echo "warning: could not remove $REDIS_DIR" >&2
}

# The e2e test with the real Prometheus (tests/e2e/prometheus.rs) needs `prometheus`; it says
# SKIPPED when it is missing and this script could not install it.
install_prometheus() {
  if command -v prometheus >/dev/null 2>&1; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing prometheus (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
  else
    echo "note: prometheus is not installed (Debian/Ubuntu: sudo apt-get install -y prometheus);" >&2
    echo "      the real-Prometheus e2e test will be SKIPPED." >&2
  fi
}

# The console's browser tests (tests/e2e/ui.rs) need Debian's chromium and chromium-driver,
# and axe-core from npm (installed under target/axe-core/); they say SKIPPED when these are
# missing and this script could not install them.
AXE_JS=target/axe-core/node_modules/axe-core/axe.min.js
install_browser() {
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "==> installing chromium and chromium-driver (apt-get)"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
      echo "note: chromium and chromium-driver are not installed (Debian: sudo apt-get install -y" >&2
      echo "      chromium chromium-driver); the console's browser tests will be SKIPPED." >&2
    fi
  fi
  if [ ! -s "$AXE_JS" ]; then
    if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "==> installing npm (apt-get)"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
    fi
    if command -v npm >/dev/null 2>&1; then
      echo "==> installing axe-core (npm) under target/axe-core"
      mkdir -p target/axe-core
      npm install --prefix target/axe-core --no-audit --no-fund --silent axe-core@4 >/dev/null
    else
      echo "note: npm is missing: axe-core not installed; the console's browser tests will be SKIPPED." >&2
    fi
  fi
}

# The silences e2e tests (tests/e2e/holds.rs) drive the real `amtool`, which Debian ships in
# `prometheus-alertmanager`; they say SKIPPED when it is missing and this script could not
# install it.
install_amtool() {
  if command -v amtool >/dev/null 2>&1; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing amtool (apt-get install prometheus-alertmanager)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager >/dev/null
  else
    echo "note: amtool is not installed (Debian/Ubuntu: sudo apt-get install -y prometheus-alertmanager);" >&2
    echo "      the amtool e2e test will be SKIPPED." >&2
  fi
}

# The outbound signing tests (tests/e2e/signing.rs) verify with the reference implementation:
# the `standardwebhooks` package from PyPI, installed with pip when missing; they say SKIPPED
# when python3 or the package is not there.
install_standardwebhooks() {
  if python3 -c 'import standardwebhooks.webhooks' >/dev/null 2>&1; then
    return
  fi
  if ! command -v python3 >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing python3 and pip (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-pip >/dev/null
  fi
  echo "==> installing the standardwebhooks package (pip)"
  python3 -m pip install --quiet standardwebhooks 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages standardwebhooks \
    || echo "note: could not install standardwebhooks; the signing e2e tests will be SKIPPED." >&2
}

echo "==> scripts/check-layers.sh"
scripts/check-layers.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

# SWITCHYARD_SKIP_REDIS=1: a local run without redis-server (and without root to install it)
# leaves out every test whose name says redis, loudly; CI (CI set) runs them all.
skip_redis=
if [ -n "${SWITCHYARD_SKIP_REDIS:-}" ]; then
  if [ -n "${CI:-}" ]; then
    echo "error: SWITCHYARD_SKIP_REDIS is for local runs only; CI runs every test" >&2
    exit 2
  fi
  skip_redis=1
  echo "==> NOT RUN: every redis test (SWITCHYARD_SKIP_REDIS=1): the redis store is not tested in this run"
elif [ -z "${SWITCHYARD_TEST_REDIS_URL:-}" ]; then
  start_test_redis
fi
install_prometheus
install_browser
install_amtool
install_standardwebhooks

echo "==> cargo test"
log=$(mktemp)
# One EXIT trap for both: the test log, and the throwaway redis-server when we started one.
trap 'rm -f "$log"; if [ -n "${REDIS_DIR:-}" ]; then stop_test_redis; fi' EXIT
if [ -n "$skip_redis" ]; then
  cargo test --workspace --lib --bins --tests --examples --locked -- --skip redis 2>&1 | tee "$log"
  cargo test --workspace --benches --locked 2>&1 | tee -a "$log"
else
  cargo test --workspace --all-targets --locked 2>&1 | tee "$log"
fi
# The fault suite, briefly, on the binary cargo test built (scripts/faults.sh; FAULTS=full for
# the long run). Its scenarios count in the closing line; a failure fails the script after it.
echo "==> fault suite (FAULTS=quick)"
faults_rc=0
if [ -n "$skip_redis" ]; then
  FAULTS=quick FAULTS_NO_REDIS=1 SWITCHYARD_BIN=target/debug/switchyard scripts/faults.sh \
    --only slow-clients --only hanging-endpoint --only storm-429 --only kill9-file 2>&1 | tee -a "$log" || faults_rc=$?
else
  FAULTS=quick SWITCHYARD_BIN=target/debug/switchyard scripts/faults.sh 2>&1 | tee -a "$log" || faults_rc=$?
fi
echo "==> deployment recipes (scripts/check-deploy.sh)"
deploy_rc=0
scripts/check-deploy.sh target/debug/switchyard 2>&1 | tee -a "$log" || deploy_rc=$?
# Tests that could check nothing on this machine say so on a `SKIPPED: name: why` line
# (tests/e2e/support.rs `skipped`): they are counted as skipped, and listed.
grep '^SKIPPED: ' "$log" || true
# One closing line for the whole run (cargo prints one per test binary, the last of which is
# often a target with no tests).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /^SKIPPED: / { s += 1 }
     /^faults: [0-9]+ passed, [0-9]+ failed$/ { p += $2; f += $4 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p - s, f, s }' "$log"
if [ -n "$skip_redis" ]; then
  echo "NOT RUN: every redis test and redis fault scenario (SWITCHYARD_SKIP_REDIS=1)"
fi
if [ "$faults_rc" -ne 0 ]; then exit "$faults_rc"; fi
exit "$deploy_rc"
