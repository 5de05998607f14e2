#!/usr/bin/env bash
# The fault suite: the real switchyard binary under load while it, Redis, its clients or its
# endpoints misbehave; prints accepted, delivered, lost and duplicated alerts per scenario and
# exits non-zero on any loss (an alert answered 202 and never delivered). See scripts/faults.py.
#
# Usage: scripts/faults.sh                 # FAULTS=quick: every scenario briefly (~1-2 min)
#        FAULTS=full scripts/faults.sh     # longer and heavier, release build
#        scripts/faults.sh --only kill9 --only storm-429
# Needs python3 and redis-server (installed with apt-get when missing and run as root).
# SWITCHYARD_BIN picks the binary; else target/debug (quick) or target/release (full) is built.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${FAULTS:-quick}"
case "$mode" in
  quick | full) ;;
  *) echo "FAULTS must be quick or full, not \`$mode\`" >&2; exit 2 ;;
esac

# FAULTS_NO_REDIS=1 (with only memory-store scenarios): redis-server is not needed.
if [ -z "${FAULTS_NO_REDIS:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing redis-server (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "error: redis-server is needed (Debian/Ubuntu: sudo apt-get install -y redis-server)" >&2
    exit 1
  fi
fi

bin="${SWITCHYARD_BIN:-}"
if [ -z "$bin" ]; then
  if [ "$mode" = full ]; then
    cargo build --release --locked --bin switchyard
    bin=target/release/switchyard
  else
    cargo build --locked --bin switchyard
    bin=target/debug/switchyard
  fi
fi

echo "==> fault suite ($mode) with $bin"
exec python3 scripts/faults.py --binary "$bin" --mode "$mode" "$@"
