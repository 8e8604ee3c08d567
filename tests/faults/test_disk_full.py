"""A full disk: the state database's filesystem, and the dataset's filesystem under
pull and restore. Each test mounts a small tmpfs (always unmounted afterwards).
The run that hits the wall exits 3 (or 1 for per-file failures) with a message
naming the place that is full, no traceback; nothing under a real name is partial;
once there is room, the next ordinary run works."""

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.faults.support import assert_clean_failure, bytes_lost, integrity_check, record, run, tree_digests
from tests.faults.test_crash import World, assert_no_partial_files, digest_set, make_files, write_files
from tests.support import require_tool, write_policy


def mount_tmpfs(directory, size):
    require_tool("mount")
    directory.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(directory)],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"this test needs to mount a tmpfs (run as root): {done.stderr}"


def unmount(directory):
    done = subprocess.run(["umount", str(directory)], capture_output=True, text=True)
    if done.returncode != 0:
        subprocess.run(["umount", "-l", str(directory)], capture_output=True)


@pytest.fixture
def small_mount(tmp_path):
    """Return mount(directory, size): a tmpfs there, unmounted at teardown."""
    mounted = []

    def mount(directory, size="1m"):
        mount_tmpfs(Path(directory), size)
        mounted.append(Path(directory))
        return Path(directory)

    yield mount
    for directory in reversed(mounted):
        unmount(directory)


def fill(directory, leave=0):
    """Write a filler file until the filesystem is full (down to the last byte), then
    give back `leave` bytes; return its path."""
    filler = Path(directory) / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(descriptor, b"\0" * size)
            except OSError:
                continue
        if leave:
            os.ftruncate(descriptor, max(0, os.fstat(descriptor).st_size - leave))
    finally:
        os.close(descriptor)
    return filler


def test_state_database_disk_full_exits_3_naming_the_state_directory(tmp_path, small_mount):
    files = {f"d{n % 10}/f{n:04d}.txt": f"file {n}" for n in range(300)}
    data = tmp_path / "data"
    write_files(data, {path: text.encode() for path, text in files.items()})
    write_policy(tmp_path / "policies", "ds", {"path": str(data), "authority": {"type": "local", "path": str(data)}})
    state = small_mount(tmp_path / "state")
    first = run("verify", "--json", policies=tmp_path / "policies", state=state)
    assert first.exit_code == 0, first.output
    # The index must grow now: 1500 more files to record, and only 64 KiB free (room
    # to open the database, not to finish).
    write_files(data, {f"more/{n // 100}/g{n:05d}.txt": f"more {n}".encode() for n in range(1500)})
    filler = fill(state, leave=65536)
    full = run("verify", "--json", policies=tmp_path / "policies", state=state)
    assert_clean_failure(full, 3, (str(state),))
    words = full.stderr.replace(str(tmp_path), "TMP")
    assert "full" in words or "No space" in words, full.stderr
    filler.unlink()
    assert integrity_check(state) == "ok"
    after = run("verify", "--json", policies=tmp_path / "policies", state=state)
    assert after.exit_code == 0, after.output
    [report] = after.json()["datasets"]
    assert report["counts"]["ok"] == 1800
    record("disk full: state database", 1, 1, 0)


def test_pull_onto_a_full_filesystem_leaves_no_partial_file(tmp_path, small_mount):
    chooser = random.Random(4)
    world = World(tmp_path, 4)
    # The local copy lives on a 1 MiB filesystem; the authority holds a few MiB more.
    shutil.rmtree(world.data)
    data = small_mount(world.data, "1m")
    small = {path: content for path, content in world.files.items() if len(content) <= 5_000}
    write_files(data, small)
    write_files(world.authority, {f"big/{n}.bin": chooser.randbytes(400_000) for n in range(6)})
    write_policy(world.policies, "ds", {"path": str(data), "authority": {"type": "local", "path": str(world.authority)},
                                        "pull": {"delete": False}})
    before = tree_digests(data)
    authority = tree_digests(world.authority)
    full = world.syncer("pull", "--json")
    assert full.exit_code in (1, 3), full.output
    assert "Traceback" not in full.output and "internal error" not in full.output, full.output
    assert "No space left on device" in full.output or "full" in full.output, full.output
    assert_no_partial_files(data, digest_set(before, authority))
    assert bytes_lost(before, tree_digests(data)) == 0
    assert integrity_check(world.state) == "ok"
    subprocess.run(["mount", "-o", "remount,size=16m", str(data)], check=True)
    after = world.syncer("pull", "--json")
    assert after.exit_code == 0, after.output
    lost = bytes_lost(authority, tree_digests(data))
    assert not [path for path in tree_digests(data) if path.rsplit("/", 1)[-1].startswith(".syncer-")]
    record("disk full: pull onto a small filesystem", 1, 1, lost)
    assert lost == 0


@pytest.mark.faults
def test_restore_onto_a_full_filesystem_leaves_the_target_as_it_was(tmp_path, small_mount):
    world = World(tmp_path, 5)
    pushed = world.syncer("push")
    assert pushed.exit_code == 0, pushed.output
    snapshot = tree_digests(world.data)
    disk = small_mount(tmp_path / "disk", "1m")
    target = disk / "target"
    write_files(target, {"keep/me.txt": b"the old content of the target"})
    before = tree_digests(target)
    full = world.syncer("restore", "ds", "--to", str(target), "--force")
    assert_clean_failure(full, 3, ())
    assert tree_digests(target) == before
    assert not [name for name in os.listdir(disk) if "syncer-restore" in name], os.listdir(disk)
    subprocess.run(["mount", "-o", "remount,size=32m", str(disk)], check=True)
    after = world.syncer("restore", "ds", "--to", str(target), "--force")
    assert after.exit_code == 0, after.output
    lost = bytes_lost(snapshot, tree_digests(target))
    record("disk full: restore onto a small filesystem", 1, 1, lost)
    assert lost == 0


def test_state_directory_unwritable_from_the_start(tmp_path, small_mount):
    """A state directory on a filesystem with no room at all: the database cannot
    even be created. One message naming it, exit 3."""
    data = write_files_tree(tmp_path)
    state = small_mount(tmp_path / "state")
    filler = fill(state)
    result = run("verify", policies=tmp_path / "policies", state=state)
    assert_clean_failure(result, 3, (str(state),))
    filler.unlink()
    after = run("verify", policies=tmp_path / "policies", state=state)
    assert after.exit_code == 0, after.output
    assert integrity_check(state) == "ok"
    record("disk full: state database", 1, 1, 0)
    assert data.is_dir()


def write_files_tree(tmp_path):
    data = tmp_path / "data"
    write_files(data, make_files(random.Random(1), count=5))
    write_policy(tmp_path / "policies", "ds", {"path": str(data), "authority": {"type": "local", "path": str(data)}})
    return data
