"""Benchmark push's copy step (offsite.copies) against a plain `restic copy` of the
same snapshots, side by side in one run.

Generates under .bench/copies/ (gitignored) a mixed-size dataset (default 256 MiB),
pushes it once to a local main repository, then `--repeat` times, interleaved: syncer's
copy step (syncer.actions.copies.copy_to_copies: restic copy, then the copy's newest
snapshot listed and its manifest dumped and compared) into a fresh copy repository, vs
`restic copy --tag --host` into another fresh one. Both copy repositories are created
beforehand with `init --copy-chunker-params`, so both copy the same bytes. Prints the
medians and the ratio; syncer's extra is the check (two more restic runs). Exit 0 even
when the ratio is high (a report); non-zero only when something broke.
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".bench" / "copies"
PASSWORD = "bench-password-not-secret"
MIB = 2**20


def generate(root, total):
    rng = random.Random(7)
    written, number = 0, 0
    while written < total:
        size = min(rng.choice([4096, 64 * 1024, MIB, 8 * MIB]), total - written)
        path = root / f"d{number % 16}" / f"f{number:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        written, number = written + size, number + 1
    return number


def restic(repository, *arguments, source=None):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("RESTIC_")}
    environment.update(RESTIC_REPOSITORY=str(repository), RESTIC_PASSWORD_FILE=str(WORK / "pass"),
                       RESTIC_CACHE_DIR=str(WORK / "cache"))
    if source:
        environment.update(RESTIC_FROM_REPOSITORY=str(source), RESTIC_FROM_PASSWORD_FILE=str(WORK / "pass"))
    subprocess.run(["restic", "-q", *arguments], check=True, env=environment, stdout=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from syncer.actions.copies import copy_to_copies
    from syncer.actions.offsite import manifest_directory, open_repository
    from syncer.index.db import StateDB
    from syncer.policy.load import load_policies
    from tests.support import run_syncer, write_policy

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    (WORK / "pass").write_text(PASSWORD + "\n")
    (WORK / "pass").chmod(0o600)
    files = generate(WORK / "data", options.mib * MIB)
    offsite = {"repository": str(WORK / "main"), "password_file": str(WORK / "pass"),
               "manifest_root": str(WORK / "manifests")}
    write_policy(WORK / "policies", "bench", {"path": str(WORK / "data"), "offsite": offsite,
                                              "authority": {"type": "local", "path": str(WORK / "data")}})
    pushed = run_syncer("push", policies=WORK / "policies", state=WORK / "state")
    assert pushed.exit_code == 0, pushed.output
    timings = {"syncer copy step": [], "restic copy": []}
    for round_number in range(options.repeat):
        for label in timings:
            destination = WORK / f"copy-{round_number}-{label.split()[0]}"
            restic(destination, "init", "--copy-chunker-params", source=WORK / "main")
            if label == "restic copy":
                started = time.monotonic()
                restic(destination, "copy", "--tag", "syncer:bench", "--host", "bench", source=WORK / "main")
                timings[label].append(time.monotonic() - started)
                continue
            document = dict(offsite, copies=[{"repository": str(destination), "password_file": str(WORK / "pass")}])
            write_policy(WORK / "policies", "bench", {"path": str(WORK / "data"), "offsite": document,
                                                      "authority": {"type": "local", "path": str(WORK / "data")}})
            (policy,) = load_policies(WORK / "policies")
            db = StateDB(WORK / "state")
            main_repository = open_repository(policy, db.state_dir)
            manifest = manifest_directory(policy) / "syncer-manifest.jsonl"
            started = time.monotonic()
            (row,) = copy_to_copies(policy, db, main_repository, manifest, "syncer:bench", "bench")
            timings[label].append(time.monotonic() - started)
            assert row["ok"], row
            db.close()
    medians = {label: statistics.median(values) for label, values in timings.items()}
    print(f"dataset: {files} files, {options.mib} MiB; {options.repeat} rounds, interleaved; medians:")
    for label, value in medians.items():
        print(f"  {label:17s} {value:6.2f} s   (runs: {', '.join(f'{v:.2f}' for v in timings[label])})")
    extra = medians["syncer copy step"] - medians["restic copy"]
    print(f"  ratio {medians['syncer copy step'] / medians['restic copy']:.2f}; syncer's check adds {extra:.2f} s")


if __name__ == "__main__":
    main()
