"""The demo behind `make demo`: a sample dataset, a local "authoritative" copy that
differs from it in planted ways, and the main job run on them.

Exit 0 when syncer found and showed exactly the planted differences; non-zero only
when something is broken. Safe to run again: the sample is rebuilt each time.
"""

import json
import os
import random
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
DEMO = HERE / ".demo"
POLICIES = HERE / "policies"
FOLDERS = ["photos/2019/summer", "photos/2020/winter", "photos/2021", "documents/taxes",
           "documents/letters", "music/Sigur Rós", "notes", "code/site/assets"]
PLANTED = {
    "photos/2019/summer/IMG_0003.jpg": "missing_local",
    "notes/brouillon-été.txt": "extra_local",
    "documents/taxes/2020 déclaration.pdf": "changed",
    "music/Sigur Rós/track-02.flac": "changed",
}


def generate(seed=20261124):
    """Write the authority, copy it to the local copy, then plant the differences."""
    rng = random.Random(seed)
    authority, local = DEMO / "authority", DEMO / "local"
    for folder in (authority, local):
        shutil.rmtree(folder, ignore_errors=True)
    names = ["IMG_{:04d}.jpg", "scan-{:03d}.pdf", "track-{:02d}.flac", "note-{}.txt", "página-{}.html",
             "写真-{}.png"]
    count = 0
    for folder in FOLDERS:
        for number in range(rng.randint(25, 45)):
            name = rng.choice(names).format(number)
            size = rng.choice([0, 120, 4_000, 60_000, 300_000, rng.randint(1, 2_500_000)])
            write(authority / folder / name, rng.randbytes(size))
            count += 1
    # The files the planted differences need, whatever the random names were.
    write(authority / "photos/2019/summer/IMG_0003.jpg", rng.randbytes(180_000))
    write(authority / "documents/taxes/2020 déclaration.pdf", rng.randbytes(90_000))
    write(authority / "music/Sigur Rós/track-02.flac", rng.randbytes(700_000))
    shutil.copytree(authority, local)
    (local / "photos/2019/summer/IMG_0003.jpg").unlink()
    write(local / "notes/brouillon-été.txt", b"a local draft the authority never saw\n")
    flip_byte(local / "documents/taxes/2020 déclaration.pdf")  # same size: only a checksum catches it
    with open(local / "music/Sigur Rós/track-02.flac", "r+b") as handle:
        handle.truncate(650_000)
    return count


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def flip_byte(path):
    stat = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(1234)
        byte = handle.read(1)
        handle.seek(1234)
        handle.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def ensure_password():
    """The demo repository's password: generated once, readable by its owner only."""
    path = DEMO / "secrets" / "restic.pass"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32) + "\n")
    path.chmod(0o600)
    return path


def syncer(*arguments):
    command = [sys.executable, "-m", "syncer", "--policies", str(POLICIES), "--state-dir",
               str(DEMO / "state"), *arguments]
    return subprocess.run(command, text=True, stdout=subprocess.PIPE)


def main():
    count = generate()
    ensure_password()
    print(f"demo: wrote {count} files to {DEMO / 'authority'}, copied them to {DEMO / 'local'} "
          f"and planted {len(PLANTED)} differences\n")
    shown = syncer("run")
    print(shown.stdout)
    if shown.returncode not in (0, 1):
        print(f"demo: syncer run failed (exit {shown.returncode})", file=sys.stderr)
        return 1
    checked = syncer("verify", "--json", "-q")
    report = json.loads(checked.stdout)
    found = {item["path"]: item["status"] for item in report["datasets"][0]["items"]}
    if found != PLANTED:
        print(f"demo: expected {PLANTED}\n      found    {found}", file=sys.stderr)
        return 1
    print(f"demo: all {len(PLANTED)} planted differences were found, and nothing else; "
          f"exit code {checked.returncode} (1 = findings) as documented")
    return show_offsite()


def show_offsite():
    """The run pushed the local copy to the demo's restic repository; drill a full restore.
    The local copy that was pushed holds the planted `changed` files, so the drill must
    find exactly those differing from the authority (and exit 1, as documented)."""
    print()
    listed = syncer("snapshots", "demo")
    print(listed.stdout)
    drilled = syncer("drill", "demo", "--full", "--json", "-q")
    drill = json.loads(drilled.stdout) if drilled.stdout.strip() else {}
    differing = sorted(failure["path"] for failure in drill.get("failures", []))
    expected = sorted(path for path, status in PLANTED.items() if status == "changed")
    if drilled.returncode != 1 or drill.get("passed") is not False or differing != expected:
        print(f"demo: syncer drill did not find the planted differences (exit {drilled.returncode}): "
              f"expected {expected}, found {differing}\n{drilled.stdout}", file=sys.stderr)
        return 1
    print(f"demo: drill of snapshot {drill['snapshot'][:8]} in {DEMO / 'restic-repo'}: restored all "
          f"{drill['files_checked']} files ({drill['bytes_restored'] / 2**20:.1f} MiB) and checked each against the "
          f"snapshot's manifest and the authority: {len(differing)} differ from the authority, the planted "
          f"`changed` files that were pushed as they are here; exit code 1 as documented")
    low, high = drill["projected_restore_range"]
    print(f"demo: restore throughput {drill['throughput_mib_s']} MiB/s; a full restore of "
          f"{drill['dataset_bytes'] / 2**20:.1f} MiB would take about {drill['projected_restore_seconds']} s "
          f"({low} to {high} s over {drill['projection_drills']} drills)")
    show_next_commands()
    return 0


def shown(path):
    """`path` as the user can type it from where they ran the demo."""
    path = Path(path).absolute()
    try:
        return shlex.quote(str(path.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(path))


def show_next_commands():
    """The exact commands that look at what the demo did: its policy and state are not
    the defaults (/etc/syncer/policies, /var/lib/syncer), so each names them."""
    script = Path(sys.executable).parent / "syncer"
    program = shown(script) if script.exists() else f"{shown(sys.executable)} -m syncer"
    prefix = f"{program} --policies {shown(POLICIES)} --state-dir {shown(DEMO / 'state')}"
    print("\ndemo: next, try these (status, verify and drill exit 1: the planted differences are findings):")
    for command in ("status", "verify demo", "snapshots demo", "drill demo"):
        print(f"  {prefix} {command}")


if __name__ == "__main__":
    sys.exit(main())
