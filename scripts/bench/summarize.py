"""Summarizes scripts/bench.sh's raw results (system, metric, value per line) as a Markdown
table: the median of the runs with the spread (min-max), the ratio of each switchyard store to
its baseline build (BASELINE_BIN) when one ran, of the redis and file stores to the memory store, and to
Alertmanager and to the ceiling (examples/bench_ceiling.rs)."""
import collections
import statistics
import sys

rows = collections.defaultdict(lambda: collections.defaultdict(list))
systems = []
for line in open(sys.argv[1]):
    parts = line.rstrip("\n").split("\t")
    if len(parts) != 3:
        continue
    system, metric, value = parts
    try:
        v = float(value)
    except ValueError:
        continue
    rows[metric][system].append(v)
    if system not in systems:
        systems.append(system)

def cell(values):
    if not values:
        return "-"
    med = statistics.median(values)
    fmt = (lambda x: f"{x:,.0f}") if abs(med) >= 100 else (lambda x: f"{x:.2f}")
    if len(values) == 1:
        return fmt(med)
    return f"{fmt(med)} ({fmt(min(values))}-{fmt(max(values))})"

ours = [s for s in systems if s.startswith("switchyard")]
# Ratios of each switchyard store to Alertmanager and to the ceiling (the same stack without
# switchyard's logic), when they ran.
bases = [(b, name) for b, name in (("alertmanager", "AM"), ("ceiling", "ceiling")) if b in systems]
# This build against the baseline build, store by store; the redis and file stores against
# the memory store (this build's, and the baseline's).
pairs = [(s, "baseline-" + s.split("-", 1)[1], f"{s.split('-', 1)[1]}: new / baseline")
         for s in ours if "baseline-" + s.split("-", 1)[1] in systems]
for build in ("switchyard", "baseline"):
    for store in ("redis", "file"):
        if f"{build}-{store}" in systems and f"{build}-memory" in systems:
            pairs.append((f"{build}-{store}", f"{build}-memory", f"{build}: {store} / memory"))
header = ["metric"] + systems + [name for _, _, name in pairs] \
    + [f"{s.split('-', 1)[1]} / {name}" for _, name in bases for s in ours]
print("| " + " | ".join(header) + " |")
print("|" + "---|" * len(header))
for metric, by_system in rows.items():
    line = [metric] + [cell(by_system.get(s, [])) for s in systems]
    for a, b, _ in pairs:
        mine, theirs = by_system.get(a, []), by_system.get(b, [])
        if metric.startswith("calibration") or not mine or not theirs or statistics.median(theirs) == 0:
            line.append("-")
        else:
            line.append(f"{statistics.median(mine) / statistics.median(theirs):.2f}x")
    for base, _ in bases:
        for s in ours:
            mine, theirs = by_system.get(s, []), by_system.get(base, [])
            # Calibration is the host's speed when each system ran, not a figure: no ratio.
            if metric.startswith("calibration") or not mine or not theirs or statistics.median(theirs) == 0:
                line.append("-")
            else:
                line.append(f"{statistics.median(mine) / statistics.median(theirs):.2f}x")
    print("| " + " | ".join(line) + " |")

# Grouping's cost to ingest: single-alert ingest through a grouped route against the same
# without grouping, per system (the same run).
for s in ours:
    off = rows.get("single_ok_req_s", {}).get(s, [])
    for metric, what in (("grouped_single_ok_req_s", "every alert its own group"),
                         ("grouped_storm_ok_req_s", "a storm in 10 groups")):
        on = rows.get(metric, {}).get(s, [])
        if on and off and statistics.median(off) > 0:
            print(f"\n{s}: single-alert ingest with grouping on ({what}) / off: "
                  f"{statistics.median(on) / statistics.median(off):.2f}x")
