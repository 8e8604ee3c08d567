"""Syncer's own memory where it reads a cloud authority's listing: verify and pull
against the loopback Bunny fake (tests/fakes/bunny.py) holding N small files.

Builds under .bench/listings/ (gitignored) N files (10-70 bytes, 1,000 per folder, the
tree bench/scale.py builds) and serves the same bytes from a Bunny fake in this
process, then runs `syncer verify` (empty index) and `syncer pull` (index filled, every
file present) once each and prints their time and syncer's own peak RSS (its process
alone, sampled from /proc), PASS/MISS against issue 13's 150 MiB. With --syncer-source
DIR, syncer is imported from DIR (a checkout of another commit: before/after).
"""

import argparse
import os
import random
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.scale import MIB, PYTHON, RSS_TARGET_MIB, BenchError, relative_path, timed  # noqa: E402
from bench.scale import WORK as SCALE_WORK  # noqa: E402
from tests.fakes import bunny  # noqa: E402

WORK = REPO / ".bench" / "listings"


def serve(fake, files):
    """Put N files in `fake` (under site/) and, unless built already, the same in WORK/local."""
    local, marker = WORK / "local", WORK / f"built-{files}"
    build = not marker.exists()
    if build:
        shutil.rmtree(WORK, ignore_errors=True)
    rng = random.Random(13)
    for index in range(files):
        path = relative_path(index)
        data = rng.randbytes(rng.randint(10, 70))
        fake.put_file(f"site/{path}", data)
        fake.checksum(f"site/{path}", fake.files[f"site/{path}"])  # the fake's own cache, before the timing
        if build:
            if index % 1000 == 0:
                (local / path).parent.mkdir(parents=True, exist_ok=True)
            (local / path).write_bytes(data)
    marker.touch()
    return local


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=300_000, help="files at the authority and here [300000]")
    parser.add_argument("--syncer-source", help="import syncer from this checkout instead")
    options = parser.parse_args()
    SCALE_WORK.mkdir(parents=True, exist_ok=True)  # timed() runs commands there (no syncer/ folder to import)
    with bunny.FakeBunny(zone="files") as fake:
        local = serve(fake, options.files)
        (WORK / "cloud.env").write_text(f"BUNNY_ACCESS_KEY={bunny.ACCESS_KEY}\n")
        (WORK / "cloud.env").chmod(0o600)
        (WORK / "policies").mkdir(exist_ok=True)
        (WORK / "policies" / "site.yaml").write_text(
            f"path: {local}\nauthority: {{type: bunnycdn, zone: files, path: site, endpoint: '{fake.url}', "
            f"credentials: {WORK / 'cloud.env'}}}\n")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("SYNCER_")}
        if options.syncer_source:
            environment["PYTHONPATH"] = str(Path(options.syncer_source).resolve())
        state = WORK / "state"
        shutil.rmtree(state, ignore_errors=True)
        print(f"syncer's own memory reading a loopback Bunny listing: {options.files} files")
        for command in ("verify", "pull"):
            argv = [PYTHON, "-m", "syncer", "-q", "--policies", str(WORK / "policies"), "--state-dir", str(state),
                    command]
            try:
                seconds, own, _ = timed(argv, environment)
            except BenchError as error:
                print(f"bench failed: {error}", file=sys.stderr)
                return 1
            verdict = "PASS" if own <= RSS_TARGET_MIB * MIB else "MISS"
            print(f"{command:<8} {seconds:8.1f} s  own {own / MIB:5.0f} MiB {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
