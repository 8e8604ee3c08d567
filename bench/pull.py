"""Benchmark `syncer pull` against a plain download loop, side by side in one run.

A loopback Bunny fake (tests/fakes/bunny.py) serves FILES files of SIZE bytes. Then,
each `--repeat` times, interleaved, with the median printed:

- peer: one `requests` session downloading every file into place, no checksum, no
  fsync, no temporary file (the least any downloader does);
- `syncer pull --json` (the CLI, in its own process) into an empty local copy, with
  pull.concurrency 1 and 4: listing, download to a temporary file, SHA-256 and MD5,
  fsync, rename, index update.

Both talk to the same single-process fake, so the ratio says what syncer's safety
costs; the absolute MiB/s mostly measure the fake. Usage:
    .venv/bin/python bench/pull.py [--files 200] [--size 262144] [--repeat 3]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fakes.bunny import ACCESS_KEY, FakeBunny  # noqa: E402
from tests.support import write_policy, write_secret  # noqa: E402


def peer_download(fake, names, target):
    import requests

    session = requests.Session()
    session.headers["AccessKey"] = ACCESS_KEY
    for name in names:
        response = session.get(f"{fake.url}/files/bench/{name}")
        response.raise_for_status()
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(response.content)


def syncer_pull(fake, work, concurrency):
    local = work / "local"
    shutil.rmtree(local, ignore_errors=True)
    shutil.rmtree(work / "state", ignore_errors=True)
    local.mkdir()
    write_secret(work / "bunny.env", f"BUNNY_ACCESS_KEY={ACCESS_KEY}\n")
    write_policy(work / "policies", "bench", {
        "path": str(local), "pull": {"concurrency": concurrency},
        "authority": {"type": "bunnycdn", "zone": "files", "path": "bench", "endpoint": fake.url,
                      "credentials": str(work / "bunny.env")}})
    done = subprocess.run([sys.executable, "-m", "syncer", "--policies", str(work / "policies"), "--state-dir",
                           str(work / "state"), "-q", "pull", "--json"], cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"syncer pull failed: {done.stderr}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size", type=int, default=256 * 1024)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    total_mib = options.files * options.size / 2**20
    names = [f"d{number % 10}/f{number:05d}.bin" for number in range(options.files)]
    with FakeBunny(zone="files") as fake, tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        for number, name in enumerate(names):
            fake.put_file(f"bench/{name}", os.urandom(16) + bytes([number % 256]) * (options.size - 16))
        timings = {"peer (requests loop)": [], "syncer pull, concurrency 1": [], "syncer pull, concurrency 4": []}
        for _ in range(options.repeat):
            target = work / "peer"
            shutil.rmtree(target, ignore_errors=True)
            started = time.monotonic()
            peer_download(fake, names, target)
            timings["peer (requests loop)"].append(time.monotonic() - started)
            for concurrency in (1, 4):
                started = time.monotonic()
                syncer_pull(fake, work, concurrency)
                timings[f"syncer pull, concurrency {concurrency}"].append(time.monotonic() - started)
        peer = statistics.median(timings["peer (requests loop)"])
        print(f"{options.files} files, {total_mib:.1f} MiB from a loopback Bunny fake, median of {options.repeat}:")
        for label, values in timings.items():
            seconds = statistics.median(values)
            print(f"  {label:<28} {seconds:6.2f} s  {total_mib / seconds:7.1f} MiB/s  ratio {seconds / peer:4.2f}")


if __name__ == "__main__":
    main()
