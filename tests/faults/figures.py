"""Summarise the fault suite's figures: one row per fault kind with the times it was
injected, how often the next ordinary run recovered without help, and the bytes lost.

    python -m tests.faults.figures [RESULTS.jsonl]
"""

import json
import sys
from collections import OrderedDict

from tests.faults.support import RESULTS

HEADER = ("fault", "restic", "times injected", "recovered without help", "bytes lost")


def summarize(lines):
    """Given JSON lines from support.record, return rows (fault, restic version,
    injected, recovered, lost): one per fault and restic version under test."""
    rows = OrderedDict()
    for line in lines:
        entry = json.loads(line)
        row = rows.setdefault((entry["fault"], entry.get("restic", "?")), [0, 0, 0])
        row[0] += entry["injected"]
        row[1] += entry["recovered"]
        row[2] += entry["bytes_lost"]
    return [(*key, *numbers) for key, numbers in rows.items()]


def render(rows):
    """Return the rows as a Markdown table (the README's Reliability section uses it)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for fault, restic, injected, recovered, lost in rows:
        lines.append(f"| {fault} | {restic} | {injected} | {recovered} | {lost} |")
    total = [sum(row[i] for row in rows) for i in (2, 3, 4)]
    lines.append(f"| **total** | | {total[0]} | {total[1]} | {total[2]} |")
    return "\n".join(lines)


def read_rows(path=RESULTS):
    try:
        with open(path, encoding="utf-8") as results:
            return summarize(line for line in results if line.strip())
    except FileNotFoundError:
        return []


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    rows = read_rows(argv[0] if argv else RESULTS)
    if not rows:
        print("no fault figures recorded (run `make faults`)", file=sys.stderr)
        return 1
    print(render(rows))
    lost = sum(row[4] for row in rows)
    unrecovered = sum(row[2] - row[3] for row in rows)
    if lost or unrecovered:
        print(f"\n{lost} bytes lost, {unrecovered} fault(s) not recovered without help", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
