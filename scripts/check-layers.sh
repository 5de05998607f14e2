#!/usr/bin/env bash
# Checks that the top-level modules of src/ form a one-way stack: a module may use only the
# modules listed after it (lower layers), never one above it or beside it. Tests included.
# Usage: scripts/check-layers.sh   (run by scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/../src"

# Top to bottom. Modules on one line share a layer and may not use each other.
LAYERS=(
  "main fuzz"
  "cli"
  "app"
  "ui"
  "http"
  "control"
  "runtime"
  "sources"
  "incidents"
  "grouping"
  "holding"
  "router"
  "delivery"
  "store"
  "signing tls"
  "config metrics logfmt"
  "model"
)

rank_of() {
  local i=0
  for layer in "${LAYERS[@]}"; do
    for m in $layer; do
      if [ "$m" = "$1" ]; then
        echo "$i"
        return
      fi
    done
    i=$((i + 1))
  done
  echo -1
}

status=0
for entry in *; do
  case "$entry" in
    lib.rs) continue ;;
    *.rs) module="${entry%.rs}"; files="$entry" ;;
    *) [ -d "$entry" ] || continue; module="$entry"; files=$(find "$entry" -name '*.rs') ;;
  esac
  me=$(rank_of "$module")
  if [ "$me" -lt 0 ]; then
    echo "check-layers: src/$entry is in no layer; add it to LAYERS in scripts/check-layers.sh" >&2
    status=1
    continue
  fi
  # Every `crate::<module>` (and, in the binary, `switchyard::<module>`) a file names.
  used=$( (grep -ho -E '\b(crate|switchyard)::[a-z_]+' $files || true) | sed -E 's/^(crate|switchyard):://' | sort -u)
  for dep in $used; do
    [ "$dep" = "$module" ] && continue
    them=$(rank_of "$dep")
    if [ "$them" -lt 0 ]; then
      continue
    fi
    if [ "$them" -le "$me" ]; then
      where=$(grep -ln -E "\b(crate|switchyard)::$dep\b" $files | head -3 | tr '\n' ' ')
      echo "check-layers: $module uses $dep, which is not below it ($where)" >&2
      status=1
    fi
  done
done
if [ "$status" -eq 0 ]; then
  echo "check-layers: ok"
fi
exit "$status"
