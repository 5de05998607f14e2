#!/usr/bin/env bash
# Checks the deployment recipes in deploy/ with what this machine can run:
# - the systemd unit: `systemd-analyze verify` (syntax, the binary exists) and
#   `systemd-analyze security` (exposure score at most 2.0, "OK");
# - the container's runtime: the binary runs as an unprivileged user with the image's
#   environment (config path, listen address, working directory) and `switchyard health`
#   (the image's HEALTHCHECK) answers 0 while it serves and 1 once it is gone.
# Building the image needs a Docker engine, which this machine does not have: that step is
# reported as NOT RUN, never as passed.
# Usage: scripts/check-deploy.sh [path/to/switchyard]   (run by scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/debug/switchyard}")
status=0

if command -v systemd-analyze >/dev/null 2>&1; then
  unit=$(mktemp -d)/switchyard.service
  sed "s|/usr/local/bin/switchyard|$BIN|" deploy/switchyard.service > "$unit"
  if out=$(systemd-analyze verify "$unit" 2>&1) && [ -z "$out" ]; then
    echo "check-deploy: systemd unit verifies"
  else
    echo "check-deploy: systemd-analyze verify: $out" >&2
    status=1
  fi
  score=$(systemd-analyze security --offline=yes "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'; then
    echo "check-deploy: systemd unit exposure $score (at most 2.0)"
  else
    echo "check-deploy: systemd unit exposure '${score:-unknown}' is over 2.0" >&2
    status=1
  fi
else
  echo "check-deploy: NOT RUN: the systemd unit (systemd-analyze is not installed)"
fi

if docker info >/dev/null 2>&1; then
  docker build -f deploy/Dockerfile -t switchyard:check . >/dev/null
  echo "check-deploy: container image builds"
else
  echo "check-deploy: NOT RUN: building the container image (no Docker engine on this machine)"
fi

# The image's runtime, without the image: an unprivileged user, its environment, its probe.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data=$(mktemp -d)
cp routes.yaml "$data/routes.yaml"
run_as=()
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
  chown -R 65532:65532 "$data"
  chmod 0755 "$data"
  run_as=(setpriv --reuid=65532 --regid=65532 --clear-groups)
fi
(cd "$data" && SWITCHYARD_CONFIG="$data/routes.yaml" SWITCHYARD_LISTEN="0.0.0.0:$port" \
  SWITCHYARD_DATA="$data/state" exec "${run_as[@]}" "$BIN" serve >"$data/log" 2>&1) &
pid=$!
healthy=
for _ in $(seq 1 100); do
  if SWITCHYARD_LISTEN="0.0.0.0:$port" "$BIN" health >/dev/null 2>&1; then healthy=1; break; fi
  sleep 0.1
done
if [ -n "$healthy" ]; then
  echo "check-deploy: serves as uid 65532 with the image's environment; health answers 0"
else
  echo "check-deploy: switchyard health never answered 0:" >&2
  cat "$data/log" >&2
  status=1
fi
if [ -f "$data/state/journal-0000000000000000.log" ]; then
  echo "check-deploy: the file store keeps its data in SWITCHYARD_DATA, written as the unprivileged user"
else
  echo "check-deploy: no file store journal in SWITCHYARD_DATA ($data/state)" >&2
  status=1
fi
kill -TERM "$pid" 2>/dev/null || true
if wait "$pid"; then
  echo "check-deploy: SIGTERM: exited 0"
else
  echo "check-deploy: SIGTERM: exited $?" >&2
  status=1
fi
if SWITCHYARD_LISTEN="0.0.0.0:$port" "$BIN" health >/dev/null 2>&1; then
  echo "check-deploy: health answered 0 with nothing listening" >&2
  status=1
else
  echo "check-deploy: health answers 1 once it is stopped"
fi
rm -rf "$data"
exit "$status"
