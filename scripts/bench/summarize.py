"""Summarizes scripts/bench.sh's raw results (system, metric, value per line) as a Markdown
table: the median of the runs with the spread (min-max), and the ratio of each switchyard
store to Alertmanager and to the ceiling (examples/bench_ceiling.rs)."""
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
header = ["metric"] + systems + [f"{s.split('-', 1)[1]} / {name}" for _, name in bases for s in ours]
print("| " + " | ".join(header) + " |")
print("|" + "---|" * len(header))
for metric, by_system in rows.items():
    line = [metric] + [cell(by_system.get(s, [])) for s in systems]
    for base, _ in bases:
        for s in ours:
            mine, theirs = by_system.get(s, []), by_system.get(base, [])
            # Calibration is the host's speed when each system ran, not a figure: no ratio.
            if metric.startswith("calibration") or not mine or not theirs or statistics.median(theirs) == 0:
                line.append("-")
            else:
                line.append(f"{statistics.median(mine) / statistics.median(theirs):.2f}x")
    print("| " + " | ".join(line) + " |")
