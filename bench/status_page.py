"""What the status page costs for a state database with a year of hourly runs.

Builds under .bench/status-page/ (gitignored) a state database of `--datasets`
datasets (default 3), each with 8,760 runs (a year, hourly) of every scheduled action
(pull, verify, push, check, drill, scrub), summaries shaped like the real ones, 20,000
indexed files and 200 open findings; then times, `--repeat` times, and prints medians:

- status: run_status, what `syncer status --json` computes (the peer);
- page: build_page + render_page, what `syncer report --html` and `serve`'s "/" do;
- report: `syncer report --html` as a whole process (Python's start-up and imports too),
  against `syncer status --json` as a whole process;

with the page's size and the ratio page/status. A report: exit 0 whatever it measures.
"""

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".bench" / "status-page"
ACTIONS = ("pull", "verify", "push", "check", "drill", "scrub")
HOURS = 8760


def summary(action, rng, hour):
    if action == "verify":
        return {"counts": {"ok": 19800, "missing_local": rng.randint(0, 3), "extra_local": rng.randint(0, 2),
                           "changed": rng.randint(0, 1), "unverifiable": 5}, "checksum_coverage": 0.99,
                "local": {"files": 20000, "bytes": 50 * 2**30, "hashed": 40, "hashed_bytes": 2**27}}
    if action == "push":
        return {"snapshot": f"{hour:064x}", "bytes_added": rng.randint(0, 2**30), "duration": rng.uniform(20, 600),
                "files_new": rng.randint(0, 50), "unreadable": []}
    if action == "drill":
        return {"passed": True, "throughput_mib_s": rng.uniform(40, 120), "projected_restore_seconds":
                rng.uniform(400, 1400), "bytes_restored": 2**30, "failures": []}
    if action == "scrub":
        return {"counts": {"confirmed": 500}, "confirmed_share_30d": min(1.0, hour % 720 / 720 + 0.05)}
    return {"files": 20000}


def build(datasets, seed=20261130):
    """Write the policies and the state database; return (policies dir, state dir)."""
    from syncer.index.db import StateDB

    shutil.rmtree(WORK, ignore_errors=True)
    policies, state = WORK / "policies", WORK / "state"
    policies.mkdir(parents=True)
    rng = random.Random(seed)
    db = StateDB(state)
    start = time.time() - HOURS * 3600
    for number in range(datasets):
        name = f"dataset{number}"
        data = WORK / "data" / name
        data.mkdir(parents=True)
        schedule = "\n".join(f"  {action}: '{minute} * * * *'" for minute, action in enumerate(ACTIONS))
        (policies / f"{name}.yaml").write_text(
            f"path: {data}\nauthority: {{type: local, path: {data}}}\n"
            f"offsite: {{repository: {WORK / 'repo'}, password_file: {WORK / 'pass'}}}\nschedule:\n{schedule}\n")
        with db.transaction():
            db.connection.executemany(
                "INSERT INTO files (dataset, side, path, parent, size, md5, hashed_at) "
                "VALUES (?, 'local', ?, ?, ?, ?, ?)",
                ((name, f"d{index // 100}/f{index}.jpg", f"d{index // 100}", 2_500_000, f"{index:032x}",
                  start + rng.uniform(0, HOURS * 3600)) for index in range(20000)))
            db.connection.executemany(
                "INSERT INTO findings (dataset, path, status, reason, found_at) VALUES (?, ?, 'changed', ?, ?)",
                ((name, f"d{index}/f{index}.jpg", "content differs (md5)", time.time()) for index in range(200)))
            rows = []
            for hour in range(HOURS):
                for offset, action in enumerate(ACTIONS):
                    began = start + hour * 3600 + offset * 60
                    failed = rng.random() < 0.01
                    rows.append((name, action, began, began + 30, "failed" if failed else "ok", 3 if failed else 0,
                                 json.dumps({"error": "restic: repository is locked"} if failed
                                            else summary(action, rng, hour))))
            db.connection.executemany(
                "INSERT INTO runs (dataset, action, started_at, finished_at, result, exit_code, summary) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    db.close()
    (WORK / "pass").write_text("bench\n")
    (WORK / "pass").chmod(0o600)
    return policies, state


def median_seconds(function, repeat):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    from syncer.actions.page import build_page
    from syncer.actions.status import run_status
    from syncer.index.db import StateDB
    from syncer.notify.page import render_page
    from syncer.policy import read_policies

    started = time.perf_counter()
    policies_dir, state = build(options.datasets)
    built = time.perf_counter() - started
    policies, problems = read_policies(policies_dir, state_dir=state)
    assert policies and not problems, problems
    db = StateDB(state)
    runs = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    status_seconds, _ = median_seconds(lambda: run_status(policies, db), options.repeat)
    page_seconds, html = median_seconds(lambda: render_page(build_page(policies, db)), options.repeat)
    data_seconds, _ = median_seconds(lambda: build_page(policies, db), options.repeat)
    target = WORK / "www" / "status.html"
    command = [str(Path(sys.executable).parent / "syncer"), "-q", "--policies", str(policies_dir), "--state-dir",
               str(state), "report", "--html", str(target)]

    def run(arguments, codes=(0,)):
        done = subprocess.run(arguments, capture_output=True, text=True)
        assert done.returncode in codes, done.stderr

    process_seconds, _ = median_seconds(lambda: run(command), options.repeat)
    status_command = [*command[:-3], "status", "--json"]
    status_process_seconds, _ = median_seconds(lambda: run(status_command, (0, 1)), options.repeat)
    size = (WORK / "state" / "state.db").stat().st_size
    print(f"state database: {options.datasets} datasets x {len(ACTIONS)} actions x {HOURS} hourly runs = {runs} runs, "
          f"{size / 2**20:.0f} MiB (built in {built:.0f}s)")
    print(f"status (run_status, the peer):        {status_seconds * 1000:8.1f} ms")
    print(f"page data (build_page):               {data_seconds * 1000:8.1f} ms")
    print(f"page (build_page + render_page):      {page_seconds * 1000:8.1f} ms  = {page_seconds / status_seconds:.1f}x"
          f" status; {len(html.encode()) / 1024:.0f} KiB of HTML")
    print(f"syncer status --json (whole process): {status_process_seconds * 1000:8.1f} ms")
    print(f"syncer report --html (whole process): {process_seconds * 1000:8.1f} ms  = "
          f"{process_seconds / status_process_seconds:.1f}x status --json (medians of {options.repeat})")


if __name__ == "__main__":
    main()
