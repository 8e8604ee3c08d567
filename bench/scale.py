"""Benchmark syncer at scale: many small files, flat memory, verify at the hardware's limit.

Builds under .bench/scale/ (gitignored) N small files (10-70 bytes, 1,000 per folder,
four folder levels deep) and a real copy of them as the `local` authority, then runs
syncer and its peers side by side, interleaved, `--rounds` times, and prints medians,
ratios and the peak RSS of each command, PASS/MISS against issue 13's targets:

- cold verify (empty index) vs `rclone check` and `find | xargs -0 -P$(nproc) md5sum`
  over both trees: syncer >= 1.0x their speed;
- warm verify (nothing changed) vs `find -printf '%s %T@ %p'` over both trees: <= 2x;
- push after a small change vs raw `restic backup` of the same change: <= 1.5x;
- drill --full and restore vs raw `restic restore` (reported, no target);
- syncer's own peak RSS (its process alone, sampled from /proc; restic's counted apart)
  for verify, push, drill --full, restore, scrub and status: <= 150 MiB (--memory-only
  also runs `restore --to cloud` against the `local` authority, a few files lost there).

The page cache is warm (the trees are read once first), as the issue measured. Exit 0
even when a target is missed (this is a report); non-zero when something broke.
With --syncer-source DIR, syncer is imported from DIR instead (a checkout of another
commit, for a before/after table).

With --watched, only this runs: a verify of the whole dataset against a verify by
changes after k = 10 and k = 1,000 changed files (half in the local copy, half in the
authority), in this process, through run_verify(changed=..., changed_authority=...) as
the daemon calls it for a watched dataset, each checked to find exactly the k changes.
With --verify-only, only the cold and warm verify rounds run, against their peers.
With --floor, only the cold rounds run: syncer and `xargs md5sum` against the least
Python can do for the same work (bench/floor_walk.py, one process a tree) keeping no
index, one row a folder, or one row a file: how near md5sum a Python verify can come.
"""

import argparse
import inspect
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.append(str(REPO))  # last: a --syncer-source or the installed syncer still comes first
from bench.run import print_verdict  # noqa: E402

PYTHON = sys.executable
BIN = Path(PYTHON).parent
WORK = REPO / ".bench" / "scale"
CORES = len(os.sched_getaffinity(0))
MIB = 2**20
PER_FOLDER = 1000
PASSWORD = "bench-password-not-secret"
RSS_TARGET_MIB = 150


class BenchError(Exception):
    """A tool failed or gave a wrong answer: the figures would mean nothing."""


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def relative_path(index):
    """A deep tree: 1,000 files per folder, folders four levels deep."""
    folder = index // PER_FOLDER
    return f"p{folder // 1000:02d}/q{folder // 100 % 10}/r{folder // 10 % 10}/s{folder % 10}/f{index:07d}.txt"


def build(files):
    """Build .bench/scale/data (local + authority) unless one with `files` files is there."""
    data, marker = WORK / "data", WORK / "data.json"
    if marker.exists() and json.loads(marker.read_text()) == {"files": files, "version": 1}:
        return data
    remove(data)
    log(f"generating {files} files and their authority copy ...")
    rng = random.Random(13)
    local = data / "local"
    for index in range(files):
        path = local / relative_path(index)
        if index % PER_FOLDER == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            out.write(rng.randbytes(rng.randint(10, 70)))
    subprocess.run(["cp", "-a", str(local), str(data / "authority")], check=True)
    marker.write_text(json.dumps({"files": files, "version": 1}))
    return data


def read_hwm(pid):
    """Peak RSS (VmHWM) in bytes of one process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def descendants(pid):
    """PIDs below `pid` (Linux's /proc/PID/task/TID/children)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        found += [int(child) for child in children]
        queue += [int(child) for child in children]
    return found


def timed(command, environment=None, expect=(0,), shell=False, stdout=subprocess.DEVNULL):
    """Run `command`; return (seconds, its own peak RSS, the largest peak RSS of its
    descendants), both sampled from /proc every 20 ms. Raise BenchError on failure."""
    started = time.perf_counter()
    # cwd: `python -m` puts it first on sys.path, before --syncer-source
    process = subprocess.Popen(command, env=environment, stdout=stdout, stderr=subprocess.PIPE, shell=shell,
                               executable="/bin/bash" if shell else None, cwd=WORK)
    peaks = {"own": 0, "children": 0}

    def sample():
        while process.poll() is None:
            own = read_hwm(process.pid)
            if own:
                peaks["own"] = max(peaks["own"], own)
            for child in descendants(process.pid):
                peaks["children"] = max(peaks["children"], read_hwm(child) or 0)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stderr = process.stderr.read()
    process.wait()
    seconds = time.perf_counter() - started
    sampler.join()
    if process.returncode not in expect:
        shown = command if isinstance(command, str) else " ".join(map(str, command))
        raise BenchError(f"{shown} exited {process.returncode}: {stderr.decode(errors='replace')[-2000:]}")
    return seconds, peaks["own"], peaks["children"]


class Measure:
    def __init__(self):
        self.times, self.own, self.children = {}, {}, {}

    def run(self, label, command, environment=None, **options):
        seconds, own, children = timed(command, environment, **options)
        self.times.setdefault(label, []).append(seconds)
        self.own[label] = max(self.own.get(label, 0), own)
        self.children[label] = max(self.children.get(label, 0), children)
        log(f"  {label}: {seconds:.1f}s, own {own / MIB:.0f} MiB, children {children / MIB:.0f} MiB")
        return seconds

    def median(self, label):
        return statistics.median(self.times[label])


def restic_environment(repository):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("RESTIC_", "AWS_", "SYNCER_"))}
    environment.update(RESTIC_REPOSITORY=str(repository), RESTIC_PASSWORD_FILE=str(WORK / "password"),
                       RESTIC_CACHE_DIR=str(WORK / "restic-cache"))
    return environment


def syncer_environment(source):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("RESTIC_", "AWS_", "SYNCER_"))}
    environment["TMPDIR"] = str(WORK / "tmp")  # drill's workspace on the bench's disk
    if source:
        environment["PYTHONPATH"] = str(Path(source).resolve())
    return environment


def remove(path):
    """rm -rf: shutil.rmtree takes minutes over a restored tree of many small files."""
    subprocess.run(["rm", "-rf", str(path)], check=True)


def interleave(rounds, runners):
    """Run each runner `rounds` times, rotating their order every round."""
    for number in range(rounds):
        shift = number % len(runners)
        for runner in runners[shift:] + runners[:shift]:
            runner()


def run(options):
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "tmp").mkdir(exist_ok=True)
    (WORK / "password").write_text(PASSWORD + "\n")
    (WORK / "password").chmod(0o600)
    data = build(options.files)
    local, authority = data / "local", data / "authority"
    log("warming the page cache ...")
    subprocess.run(f"find {local} {authority} -type f -print0 | xargs -0 cat > /dev/null", shell=True, check=True)
    measure = Measure()
    environment = syncer_environment(options.syncer_source)
    repository, raw_repository = WORK / "repo", WORK / "repo-raw"
    policies, state, cold_state = WORK / "policies", WORK / "state", WORK / "state-cold"
    for path in (repository, raw_repository, state, WORK / "manifests", WORK / "restic-cache"):
        shutil.rmtree(path, ignore_errors=True)
    policies.mkdir(exist_ok=True)
    (policies / "scale.yaml").write_text(
        f"path: {local}\nauthority: {{type: local, path: {authority}}}\n"
        f"offsite:\n  repository: {repository}\n  password_file: {WORK / 'password'}\n"
        f"  manifest_root: {WORK / 'manifests'}\n  retention: {{keep_daily: 7, keep_weekly: 4}}\n")
    # verify's ratios are measured as a new user would try them, without an offsite section
    # (its comparison with the snapshot's manifest is measured on its own below)
    (WORK / "policies-verify").mkdir(exist_ok=True)
    (WORK / "policies-verify" / "scale.yaml").write_text(
        f"path: {local}\nauthority: {{type: local, path: {authority}}}\n")
    if options.watched:  # nothing else: no repository, no peers
        return report_watched(options, watched_verify(options, local, authority))

    def syncer_run(label, state_dir, *arguments, expect=(0,), policy_dir=policies):
        command = [PYTHON, "-m", "syncer", "-q", "--policies", str(policy_dir), "--state-dir", str(state_dir)]
        return measure.run(label, command + list(arguments), environment, expect=expect)

    (WORK / "rclone.conf").write_text("")
    if options.floor:
        (WORK / "floor").mkdir(exist_ok=True)  # no index or repository to set up: cold rounds only
    elif options.verify_only:
        log("first verify (index) ...")
        syncer_run("setup/verify", state, "verify", policy_dir=WORK / "policies-verify")
    else:
        log("first verify and push (index, manifest, repository) ...")
        syncer_run("setup/verify", state, "verify")
        syncer_run("setup/push", state, "push")
        subprocess.run(["restic", "init"], env=restic_environment(raw_repository), check=True, capture_output=True)
        measure.run("setup/restic backup", ["restic", "backup", "-q", str(local)], restic_environment(raw_repository))
    changed = [local / relative_path(index) for index in range(0, options.files, max(1, options.files // 5))]

    def cold_verify():
        remove(cold_state)
        syncer_run("cold verify/syncer", cold_state, "verify", policy_dir=WORK / "policies-verify")

    def rclone_check():
        measure.run("cold verify/rclone check", [str(BIN / "rclone"), "check", "-q", "--config",
                                                 str(WORK / "rclone.conf"), str(local), str(authority)])

    def md5sum():
        # The command as written: xargs fills each md5sum call to its command-line
        # limit (thousands of files here), so two calls keep both cores busy. A fixed small
        # batch (-n 256, used before) spent most of the peer's CPU starting md5sum processes.
        measure.run("cold verify/xargs md5sum", f"find {local} {authority} -type f -print0 | "
                    f"xargs -0 -P {CORES} md5sum > /dev/null", shell=True)

    def floor(index):
        walker = f"{PYTHON} {REPO / 'bench' / 'floor_walk.py'} {index}"
        measure.run(f"cold verify/Python floor, index: {index}",
                    f"{walker} {local} {WORK / 'floor' / 'local.db'} & walker=$!; "
                    f"{walker} {authority} {WORK / 'floor' / 'authority.db'} && wait $walker", shell=True)

    def warm_verify():
        syncer_run("warm verify/syncer", state, "verify", policy_dir=WORK / "policies-verify")

    def find_walk():
        measure.run("warm verify/find -printf", f"find {local} {authority} -printf '%s %T@ %p\\n' > /dev/null",
                    shell=True)

    def small_change():
        # The same few files change for both (and in the authority, so drills stay clean);
        # each tool then backs up its own copy of the day.
        for path in changed:
            for root in (local, authority):
                with open(root / path.relative_to(local), "ab") as out:
                    out.write(b"+")
        measure.run("push (small change)/restic backup", ["restic", "backup", "-q", str(local)],
                    restic_environment(raw_repository))
        syncer_run("verify + offsite comparison/syncer", state, "verify")  # as `syncer run` does before a push
        syncer_run("push (small change)/syncer", state, "push")

    def drill():
        syncer_run("drill --full/syncer", state, "drill", "scale", "--full")

    def restore():
        target = WORK / "restored"
        remove(target)
        syncer_run("restore/syncer", state, "restore", "scale", "--to", str(target))
        remove(target)

    def restore_to_cloud():
        # The day's changed files are lost upstream: the restore lists the whole authority,
        # finds them missing and uploads them back from the latest snapshot.
        for path in changed:
            (authority / path.relative_to(local)).unlink(missing_ok=True)
        syncer_run("restore --to cloud/syncer", state, "restore", "scale", "--to", "cloud")
        missing = [path for path in changed if not (authority / path.relative_to(local)).is_file()]
        if missing:
            raise BenchError(f"restore --to cloud left {len(missing)} files missing upstream, e.g. {missing[0]}")

    def raw_restore():
        target = WORK / "restored-raw"
        remove(target)
        measure.run("restore/restic restore", ["restic", "restore", "latest", "--target", str(target)],
                    restic_environment(raw_repository))
        remove(target)

    def scrub_and_status():
        syncer_run("scrub/syncer", state, "scrub", expect=(0, 1))
        syncer_run("status/syncer", state, "status", "--json", expect=(0, 1))

    if options.floor:
        floors = [lambda index=index: floor(index) for index in ("none", "folder", "file")]
        interleave(options.rounds, [cold_verify, md5sum] + floors)
        return report_floor(options, measure)
    if options.memory_only:  # syncer's own memory at scale, once each, no peers
        for step in (warm_verify, small_change, drill, restore, restore_to_cloud, scrub_and_status):
            step()
        return report_memory(options, measure)
    log(f"cold verify, {options.rounds} rounds ...")
    interleave(options.rounds, [cold_verify, rclone_check, md5sum])
    log(f"warm verify, {options.rounds} rounds ...")
    interleave(options.rounds, [warm_verify, find_walk])
    if options.verify_only:
        return report(options, measure)
    log(f"push after a small change, {options.rounds} rounds ...")
    interleave(options.rounds, [small_change])
    log(f"drill and restore, {options.restore_rounds} rounds ...")
    interleave(options.restore_rounds, [drill, restore, raw_restore])
    scrub_and_status()
    report(options, measure)


def watched_verify(options, local, authority, changes=(10, 1000)):
    """Time, in this process, a verify of the whole dataset and one by changes after k
    files changed, for each k of `changes`, `options.rounds` times. Return {label:
    [seconds]}. Each verify by changes must find exactly the k files changed and judge
    k rows; the changes are then undone on the other side (untimed)."""
    if options.syncer_source:
        sys.path.insert(0, str(Path(options.syncer_source).resolve()))
    from syncer.actions.verify import run_verify
    from syncer.index.db import StateDB
    from syncer.policy import load_policies

    [policy] = load_policies(WORK / "policies-verify")
    shutil.rmtree(WORK / "state-watched", ignore_errors=True)
    db = StateDB(WORK / "state-watched")
    times = {}

    # a syncer from before verify by changes (--syncer-source) examines the local changes only
    by_changes = "changed_authority" in inspect.signature(run_verify).parameters

    def verify(label, expected, **changed):
        if not by_changes:
            changed.pop("changed_authority", None)
        started = time.perf_counter()
        [result] = run_verify([policy], db, **changed)["datasets"]
        seconds = time.perf_counter() - started
        if result.get("error") or result["counts"]["changed"] != expected:
            raise BenchError(f"{label}: expected {expected} changed, got {result.get('error') or result['counts']}")
        if label and changed and by_changes and result.get("compared") != expected:
            raise BenchError(f"{label}: judged {result.get('compared')} rows, not the {expected} changed")
        if label:
            times.setdefault(label, []).append(seconds)
            log(f"  {label}: {seconds:.2f}s")

    log("watched: filling the index ...")
    verify(None, 0)
    rng = random.Random(13)
    for _ in range(options.rounds):
        verify("whole dataset", 0)
        for k in changes:
            picked = [relative_path(index) for index in rng.sample(range(options.files), k)]
            sides = {policy.name: picked[0::2]}, {policy.name: picked[1::2]}
            for root, paths in ((local, picked[0::2]), (authority, picked[1::2])):
                for path in paths:
                    with open(root / path, "ab") as out:
                        out.write(b"+")
            verify(f"by changes, k={k}", k, changed=sides[0], changed_authority=sides[1])
            for root, paths in ((authority, picked[0::2]), (local, picked[1::2])):  # the other side catches up
                for path in paths:
                    with open(root / path, "ab") as out:
                        out.write(b"+")
            verify(None, 0, changed=sides[1], changed_authority=sides[0])
    if by_changes:
        time_listing(db, options.rounds, times)
    db.close()
    return times


def time_listing(db, rounds, times, k=10):
    """A cloud authority's changes are seen only in its listing, read whole: time what
    syncer adds to reading it, the listing's rows diffed against the stored ones in
    SQLite with k entries changed, against replacing them all (as before). The listing
    is the authority's rows of the bench, as an S3-like service would list them."""
    from syncer.endpoints.base import Entry
    from syncer.index.incremental import apply_listing, diff_listing

    entries = [Entry(path, size, sha256, "sha256") for path, size, sha256 in db.execute(
        "SELECT path, size, sha256 FROM files WHERE dataset='scale' AND side='authority'").fetchall()]
    db.replace_listing("listing", entries)
    for number in range(rounds):
        for index in range(number * k, number * k + k):
            entries[index] = Entry(entries[index].path, entries[index].size, f"{number:064x}", "sha256")
        started = time.perf_counter()
        changed = diff_listing(db, "listing", iter(entries))
        apply_listing(db, "listing", changed)
        times.setdefault(f"listing diffed, k={k}", []).append(time.perf_counter() - started)
        if len(changed) != k:
            raise BenchError(f"the listing's diff found {len(changed)} changed entries, not {k}")
        started = time.perf_counter()
        db.replace_listing("listing", iter(entries))
        times.setdefault("listing replaced", []).append(time.perf_counter() - started)
    log(f"  listing of {len(entries)}: diffed {statistics.median(times[f'listing diffed, k={k}']):.2f}s, "
        f"replaced {statistics.median(times['listing replaced']):.2f}s")


def report_watched(options, times):
    print(f"syncer scale bench (--watched), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
          f"{options.files} files x 2, verify in one process as the daemon runs it, median of {options.rounds}")
    whole = statistics.median(times["whole dataset"])
    for label, seconds in times.items():
        if label.startswith("listing"):
            continue
        print(f"  verify, {label:<24} {statistics.median(seconds):8.3f} s   "
              f"{whole / statistics.median(seconds):7.1f}x faster than the whole dataset's")
    if "listing replaced" not in times:
        return
    print("a cloud authority's listing (read whole, not timed here), stored:")
    for label in ("listing replaced", "listing diffed, k=10"):
        print(f"  {label:<32} {statistics.median(times[label]):8.3f} s")


def report_memory(options, measure):
    print(f"syncer scale bench (--memory-only), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
          f"{options.files} files x 2, each command once")
    for label in measure.times:
        children = measure.children[label]
        ours = "restic" not in label  # the raw restic runs are peers: their memory has no target
        verdict = ("PASS" if measure.own[label] <= RSS_TARGET_MIB * MIB else "MISS") if ours else "    "
        print(f"{label:<38} {measure.median(label):8.1f} s  own {measure.own[label] / MIB:5.0f} MiB {verdict}"
              + (f"  children {children / MIB:5.0f} MiB" if children else ""))


def report_floor(options, measure):
    print(f"syncer scale bench (--floor), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
          f"{options.files} files x 2, cold, median of {options.rounds} rounds; load average "
          f"{options.load_at_start:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    peer = measure.median("cold verify/xargs md5sum")
    for label in measure.times:
        print(f"  {label.split('/', 1)[1]:<32} {measure.median(label):8.1f} s   "
              f"{peer / measure.median(label):5.2f}x the speed of xargs -P{CORES} md5sum")


def report(options, measure):
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.machine())
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(f"syncer scale bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {options.files} files x 2 "
          f"(10-70 B, {PER_FOLDER} per folder), page cache warm, median of {options.rounds} rounds "
          f"({options.restore_rounds} for drill/restore)")
    print(f"machine: {cpu}, {CORES} cores ({platform.machine()}), {memory:.0f} GiB, Linux {platform.release()}, "
          f"Python {platform.python_version()}; load average {options.load_at_start:.1f} at start, "
          f"{os.getloadavg()[0]:.1f} at end")
    print()
    print(f"{'command':<38} {'seconds':>8} {'own peak RSS':>13} {'children':>9}")
    for label in measure.times:
        if label.startswith("setup/"):
            continue
        children = measure.children[label]
        print(f"{label:<38} {measure.median(label):8.1f} {measure.own[label] / MIB:9.0f} MiB "
              f"{children / MIB:5.0f} MiB" if children else
              f"{label:<38} {measure.median(label):8.1f} {measure.own[label] / MIB:9.0f} MiB")
    print()

    verdict = print_verdict

    def ratio(peer, ours):
        return measure.median(peer) / measure.median(ours)

    print("targets (speed = peer time / syncer time; warm and push = syncer time / peer time):")
    verdict("cold verify speed vs rclone check", ratio("cold verify/rclone check", "cold verify/syncer"), 1.0, True)
    verdict(f"cold verify speed vs xargs -P{CORES} md5sum", ratio("cold verify/xargs md5sum", "cold verify/syncer"),
            1.0, True)
    verdict("warm verify vs find -printf", ratio("warm verify/syncer", "warm verify/find -printf"), 2.0, False)
    for label in ("cold verify/syncer", "warm verify/syncer"):
        verdict(f"syncer's own peak RSS: {label.split('/')[0]}", measure.own[label] / MIB, RSS_TARGET_MIB, False,
                " MiB")
    if options.verify_only:
        return
    verdict("push (small change) vs restic backup",
            ratio("push (small change)/syncer", "push (small change)/restic backup"), 1.5, False)
    print(f"  {'drill --full / restic restore (no target)':<48} "
          f"{ratio('drill --full/syncer', 'restore/restic restore'):7.2f}x")
    print(f"  {'restore / restic restore (no target)':<48} "
          f"{ratio('restore/syncer', 'restore/restic restore'):7.2f}x")
    for label in ("verify + offsite comparison/syncer",
                  "push (small change)/syncer", "drill --full/syncer", "restore/syncer", "scrub/syncer",
                  "status/syncer"):
        verdict(f"syncer's own peak RSS: {label.split('/')[0]}", measure.own[label] / MIB, RSS_TARGET_MIB, False,
                " MiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=int(os.environ.get("BENCH_SCALE_FILES", 1_000_000)),
                        help="files in each tree [env BENCH_SCALE_FILES; 1000000]")
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_REPEAT", 3)),
                        help="rounds of each measurement [env BENCH_REPEAT; 3]")
    parser.add_argument("--restore-rounds", type=int, default=None, help="rounds of drill/restore [--rounds]")
    parser.add_argument("--syncer-source", help="import syncer from this checkout instead")
    parser.add_argument("--memory-only", action="store_true",
                        help="only syncer's own peak RSS: each command once, no peers (for the largest trees)")
    parser.add_argument("--watched", action="store_true",
                        help="only a whole verify against verifies by changes after 10 and 1,000 changes")
    parser.add_argument("--verify-only", action="store_true",
                        help="cold and warm verify against their peers only (no repository, push, drill or restore)")
    parser.add_argument("--floor", action="store_true",
                        help="cold verify and md5sum against a bare Python walk, with and without an index")
    parser.add_argument("--clean", action="store_true", help="delete the generated trees afterwards")
    options = parser.parse_args()
    options.restore_rounds = options.restore_rounds or options.rounds
    options.load_at_start = os.getloadavg()[0]
    for tool in ("restic", "find", "xargs", "md5sum"):
        if not shutil.which(tool):
            print(f"bench/scale.py needs {tool}", file=sys.stderr)
            return 2
    try:
        run(options)
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 1
    finally:
        if options.clean:
            shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
