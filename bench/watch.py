"""Benchmark: k changed files reported by the watcher, re-indexed through the dirty-path
refresh (syncer.index.dirty), against the full index walk of the same tree in the same
run (scan_tree, which also hashes only what changed but stats every file) and against
`find -printf` over the tree (the cheapest possible walk).

    .venv/bin/python bench/watch.py [--files 20000] [--changes 1,10,100,1000]

Prints the median times and ratios; exit 0 even when the refresh is not faster (this is
a report), non-zero only when something broke. Generates its tree under .bench/watch/.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from syncer.index.db import LOCAL, StateDB  # noqa: E402
from syncer.index.dirty import mark_changed, refresh_paths  # noqa: E402
from syncer.index.scan import scan_tree  # noqa: E402

WORK = Path(__file__).resolve().parent.parent / ".bench" / "watch"


def timed(function):
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--changes", default="1,10,100,1000")
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    root = WORK / "data"
    names = [f"d{n % 200:03d}/f{n}.bin" for n in range(options.files)]
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(os.urandom(4096))
    db = StateDB(WORK / "state")
    seconds, _ = timed(lambda: scan_tree(db, "bench", LOCAL, root, (), ("sha256",)))
    print(f"{options.files} files of 4 KiB indexed in {seconds:.2f}s")
    print(f"{'k':>6} {'dirty refresh':>14} {'full scan':>10} {'find':>8} {'scan/refresh':>13}")
    for k in (int(value) for value in options.changes.split(",")):
        changed = names[:: max(1, len(names) // k)][:k]
        refresh, full, find = [], [], []
        for _ in range(options.repeat):
            for name in changed:
                (root / name).write_bytes(os.urandom(4096))
            seconds, stats = timed(lambda changed=changed: (mark_changed(db, "bench", changed),
                                            refresh_paths(db, "bench", root, changed))[1])
            assert stats.hashed == k, stats
            refresh.append(seconds)
            for name in changed:
                (root / name).write_bytes(os.urandom(4096))
            seconds, stats = timed(lambda: scan_tree(db, "bench", LOCAL, root, (), ("sha256",)))
            assert stats.hashed == k, stats
            full.append(seconds)
            seconds, _ = timed(lambda: subprocess.run(["find", str(root), "-type", "f", "-printf", "%s %T@ %p\n"],
                                                      stdout=subprocess.DEVNULL, check=True))
            find.append(seconds)
        r, f, w = (statistics.median(values) for values in (refresh, full, find))
        print(f"{k:>6} {r * 1000:>11.1f} ms {f * 1000:>7.1f} ms {w * 1000:>5.1f} ms {f / r:>12.1f}x")
    db.close()
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
