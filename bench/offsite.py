"""Benchmark syncer's offsite path against raw restic, side by side in one run.

Generates under .bench/offsite/ (gitignored) a mixed-size dataset (default 1 GiB,
files of 4 KiB to 32 MiB), then measures, each `--repeat` times with the tools
interleaved, and prints medians:

- push: `syncer push` (index warm, as `syncer run` leaves it after verify; the
  manifest, the backup, retention) vs `restic backup` of the same directory, each
  into its own fresh, already initialised local repository. The cold-index push
  (every file hashed for the manifest first) and the daily case (a push after one
  small file changed) are reported too;
- drill: `syncer drill --full` (restore everything into a temporary directory and
  check every file against the manifest) vs `restic restore` + `md5sum -c` of the
  same snapshot.

Targets: both ratios <= 1.10. syncer's fixed costs (its start-up, the manifest, one
more restic run for retention) are printed as seconds beside each ratio: they weigh
less as datasets grow. The page cache is dropped before every run when we may (root).
Exit 0 even when a target is missed (this is a report); non-zero only when something
broke.
"""

import argparse
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
WORK = REPO / ".bench" / "offsite"
TARGET = 1.10
MIB = 2**20
PASSWORD = "bench-password-not-secret"


def generate(root, total_mib, seed=7):
    """Write files of mixed sizes adding up to about `total_mib`; return (files, bytes)."""
    rng = random.Random(seed)
    shutil.rmtree(root, ignore_errors=True)
    sizes = [4 * 2**10, 64 * 2**10, 512 * 2**10, 2 * MIB, 8 * MIB, 32 * MIB]
    written, count = 0, 0
    while written < total_mib * MIB:
        size = min(rng.choice(sizes), total_mib * MIB - written) or 1
        path = root / f"d{count % 17:02d}" / f"file-{count:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        written += size
        count += 1
    return count, written


def drop_caches():
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def restic_env(repository, cache):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("RESTIC_", "AWS_", "SYNCER_"))}
    environment.update(RESTIC_REPOSITORY=str(repository), RESTIC_PASSWORD_FILE=str(WORK / "password"),
                       RESTIC_CACHE_DIR=str(cache))
    return environment


def run(command, environment=None, cwd=None):
    """Run `command`; return its wall time in seconds. Raise if it fails."""
    started = time.perf_counter()
    done = subprocess.run(command, env=environment, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} exited {done.returncode}: {done.stderr[-500:]}")
    return seconds


def init_repository(path):
    shutil.rmtree(path, ignore_errors=True)
    run(["restic", "init"], restic_env(path, WORK / "cache-init"))


def write_policy(data, repository, policies):
    policies.mkdir(parents=True, exist_ok=True)
    (policies / "bench.yaml").write_text(
        f"path: {data}\nauthority: {{type: local, path: {data}}}\n"
        f"offsite:\n  repository: {repository}\n  password_file: {WORK / 'password'}\n"
        f"  retention: {{keep_daily: 7, keep_weekly: 4}}\n")


def syncer(policies, state, *arguments):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("RESTIC_", "AWS_", "SYNCER_"))}
    return [PYTHON, "-m", "syncer", "-q", "--policies", str(policies), "--state-dir", str(state), *arguments], \
        environment


def measure_push(data, repeat):
    """Return {"syncer_warm": [s], "syncer_cold": [s], "restic": [s]}."""
    times = {"syncer_warm": [], "syncer_cold": [], "restic": [], "syncer_again": [], "restic_again": []}
    policies = WORK / "policies"
    for round_number in range(repeat):
        for variant in ("restic", "syncer_warm", "syncer_cold"):
            repository = WORK / f"repo-{variant}"
            init_repository(repository)
            if variant == "restic":
                drop_caches()
                times[variant].append(run(["restic", "backup", "--tag", "raw", str(data)],
                                          restic_env(repository, WORK / "cache-raw")))
                continue
            state = WORK / f"state-{variant}"
            shutil.rmtree(state, ignore_errors=True)
            write_policy(data, repository, policies)
            if variant == "syncer_warm":
                command, environment = syncer(policies, state, "verify")
                run(command, environment)  # fills the index, as `syncer run` does before its push
            drop_caches()
            command, environment = syncer(policies, state, "push")
            times[variant].append(run(command, environment))
        # The daily case: one small file changed since the last backup. The first such
        # push forgets the morning's snapshot and prunes (offsite.prune: weekly); only
        # the second, an ordinary day's push, is timed.
        write_policy(data, WORK / "repo-syncer_warm", policies)
        for step in ("settle", "timed"):
            with open(next(data.rglob("*.bin")), "ab") as changed:
                changed.write(f"round {round_number} {step}\n".encode())
            drop_caches()
            seconds = run(["restic", "backup", "--tag", "raw", str(data)],
                          restic_env(WORK / "repo-restic", WORK / "cache-raw"))
            command, environment = syncer(policies, WORK / "state-syncer_warm", "verify")
            run(command, environment)
            drop_caches()
            command, environment = syncer(policies, WORK / "state-syncer_warm", "push")
            if step == "timed":
                times["restic_again"].append(seconds)
                times["syncer_again"].append(run(command, environment))
            else:
                run(command, environment)
    return times


def measure_drill(data, repeat):
    """Restore the snapshot in repo-syncer_warm fully and check it, both ways."""
    repository = WORK / "repo-syncer_warm"
    sums = WORK / "md5sums"
    with open(sums, "w") as listing:
        for path in sorted(data.rglob("*")):
            if path.is_file():
                listing.write(f"{hashlib.md5(path.read_bytes()).hexdigest()}  {path.relative_to(data)}\n")
    times = {"syncer": [], "restic": []}
    for _ in range(repeat):
        target = Path(tempfile.mkdtemp(prefix="restic-restore-", dir=WORK))
        drop_caches()
        started = time.perf_counter()
        run(["restic", "restore", "latest", "--tag", "syncer:bench", "--target", str(target), "--include", str(data)],
            restic_env(repository, WORK / "cache-raw"))
        run(["md5sum", "-c", "--quiet", str(sums)], cwd=target / str(data).lstrip("/"))
        times["restic"].append(time.perf_counter() - started)
        shutil.rmtree(target)
        drop_caches()
        command, environment = syncer(WORK / "policies", WORK / "state-syncer_warm", "drill", "bench", "--full")
        environment["TMPDIR"] = str(WORK)  # same disk as the raw restore
        times["syncer"].append(run(command, environment))
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args(argv)
    if not shutil.which("restic"):
        print("bench/offsite.py needs restic (make restic)", file=sys.stderr)
        return 2
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "password").write_text(PASSWORD + "\n")
    (WORK / "password").chmod(0o600)
    data = WORK / "data"
    files, size = generate(data, options.size_mib)
    cold = drop_caches()
    print(f"offsite bench: {files} files, {size / MIB:.0f} MiB; restic "
          f"{subprocess.run(['restic', 'version'], capture_output=True, text=True).stdout.split()[1]}; "
          f"{'page cache dropped before every run' if cold else 'page cache NOT dropped (not root)'}; "
          f"median of {options.repeat}")
    push = measure_push(data, options.repeat)
    drill = measure_drill(data, options.repeat)
    medians = {name: statistics.median(values) for name, values in push.items()}
    drill_medians = {name: statistics.median(values) for name, values in drill.items()}
    rows = [
        ("push (warm index) vs restic backup", medians["syncer_warm"], medians["restic"]),
        ("push (cold index) vs restic backup", medians["syncer_cold"], medians["restic"]),
        ("push after a small change vs restic backup", medians["syncer_again"], medians["restic_again"]),
        ("drill --full vs restic restore + md5sum -c", drill_medians["syncer"], drill_medians["restic"]),
    ]
    for label, ours, theirs in rows:
        ratio = ours / theirs
        verdict = "meets" if ratio <= TARGET else "MISSES"
        print(f"  {label:<45} {ours:7.2f}s vs {theirs:7.2f}s  ratio {ratio:.2f}x  (+{ours - theirs:.2f}s; "
              f"{verdict} target <= {TARGET}x)")
    shutil.rmtree(WORK / "data", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
