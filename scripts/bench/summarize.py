"""Summarizes scripts/bench.sh's raw results (system, metric, value per line) as a Markdown
table: the median of the runs with the spread (min-max), and the ratio of each switchyard
store to Alertmanager."""
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
header = ["metric"] + systems + [f"{s.split('-', 1)[1]} / AM" for s in ours if "alertmanager" in systems]
print("| " + " | ".join(header) + " |")
print("|" + "---|" * len(header))
for metric, by_system in rows.items():
    line = [metric] + [cell(by_system.get(s, [])) for s in systems]
    if "alertmanager" in systems and metric.startswith("calibration"):
        # The host's speed when each system ran, not a figure of the system: no ratio.
        line += ["-" for _ in ours]
    elif "alertmanager" in systems:
        am = by_system.get("alertmanager", [])
        for s in ours:
            mine = by_system.get(s, [])
            if mine and am and statistics.median(am) != 0:
                line.append(f"{statistics.median(mine) / statistics.median(am):.2f}x")
            else:
                line.append("-")
    print("| " + " | ".join(line) + " |")
