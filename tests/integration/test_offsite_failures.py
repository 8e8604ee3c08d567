"""What goes wrong offsite: damaged packs, a wrong password, a killed push (and what
status says after a failed one), targets that must not be touched, a full disk, and
snapshots holding escaping links."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.offsite_support import PASSWORD, make_dataset, tree_bytes
from tests.support import REPO, free_port

FILES = {f"album/{number:02d}.jpg": os.urandom(60_000 + number) for number in range(12)} | {
    "readme.txt": b"hello\n", "deep/er/still.bin": os.urandom(120_000)}


@pytest.mark.restic_versions
def test_drill_passes_then_fails_after_a_pack_file_is_corrupted(tmp_path):
    dataset = make_dataset(tmp_path, FILES)
    assert dataset.syncer("push").exit_code == 0
    good = dataset.syncer("drill", "photos", "--full", "--json")
    assert good.exit_code == 0, good.output
    assert good.json()["passed"] is True

    packs = [path for path in Path(dataset.repository, "data").rglob("*") if path.is_file()]
    assert packs
    for pack in packs:  # flip a byte every KiB of every pack: each blob (trees and data) is damaged
        content = bytearray(pack.read_bytes())
        for offset in range(0, len(content) - 200, 1024):
            content[offset] ^= 0xFF
        pack.chmod(0o600)
        pack.write_bytes(bytes(content))
    bad = dataset.syncer("drill", "photos", "--sample", "5", "--json")
    assert bad.exit_code == 1, bad.output
    report = bad.json()
    assert report["passed"] is False and report["failures"]
    assert all(failure["reason"] for failure in report["failures"])
    full = dataset.syncer("drill", "photos", "--full", "--json")
    assert full.exit_code == 1, full.output
    assert full.json()["passed"] is False and full.json()["failures"]
    checked = dataset.syncer("check", "--read-data-subset", "100%", "--json")
    assert checked.exit_code == 1, checked.output
    assert "Traceback" not in bad.output + full.output + checked.output
    # restic 0.18's check --json names them; on 0.14 they are read from its messages
    [result] = checked.json()["datasets"]
    assert result["broken_packs"] == sorted(pack.name for pack in packs), checked.output
    assert f"{len(packs)} pack file" in checked.stderr


@pytest.mark.restic_versions
def test_wrong_password_exits_3_with_a_clear_message_and_no_secret(tmp_path):
    dataset = make_dataset(tmp_path, FILES)
    assert dataset.syncer("push").exit_code == 0
    wrong = "not-the-password-7Qx2"
    dataset.password_file.write_text(wrong + "\n")
    for arguments in (("push",), ("snapshots",), ("drill", "photos"), ("restore", "photos", "--to", tmp_path / "r")):
        result = dataset.syncer(*arguments, "-v")
        assert result.exit_code == 3, (arguments, result.output)
        assert "wrong password" in result.stderr
        assert wrong not in result.output and PASSWORD not in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_status_after_a_failed_push_is_a_finding(tmp_path):
    dataset = make_dataset(tmp_path, {"a.txt": "pushed once"})
    assert dataset.syncer("push").exit_code == 0
    assert dataset.syncer("status").exit_code == 0
    dataset.password_file.write_text("not-the-password-7Qx2\n")
    assert dataset.syncer("push").exit_code == 3
    status = dataset.syncer("status", "--json")
    assert status.exit_code == 1, status.output
    [row] = status.json()["datasets"]
    assert row["last"]["push"]["result"] == "failed" and "wrong password" in row["last"]["push"]["error"]
    assert row["exit_code"] == 1 and not row["findings"] and not row["stale"]


def test_a_killed_push_leaves_a_repository_the_next_push_and_check_accept(tmp_path):
    dataset = make_dataset(tmp_path, {"first.txt": "small first push"}, retention={"keep_last": 5},
                           extra={"forget": "always"})
    assert dataset.syncer("push").exit_code == 0
    for number in range(6):
        (dataset.data / f"big-{number}.bin").write_bytes(os.urandom(8 * 2**20))
    command = [sys.executable, "-m", "syncer", "--policies", str(dataset.policies), "--state-dir",
               str(dataset.state), "push"]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SYNCER_")}
    process = subprocess.Popen(command, cwd=REPO, env=environment, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    locks = Path(dataset.repository, "locks")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(locks.iterdir()) and process.poll() is None:
        time.sleep(0.02)
    time.sleep(0.3)  # let restic write some packs
    assert process.poll() is None, "the push finished before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)
    assert any(locks.iterdir()), "the killed restic should have left its lock behind"

    again = dataset.syncer("push", "--json")
    assert again.exit_code == 0, again.output
    assert "restic unlock" in again.stderr  # retention needs the exclusive lock: the stale one was cleared
    assert again.json()["datasets"][0]["files_new"] >= 6
    checked = dataset.restic("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_restore_refuses_a_non_empty_target_and_honours_force_and_in_place(tmp_path):
    dataset = make_dataset(tmp_path, FILES)
    assert dataset.syncer("push").exit_code == 0
    target = tmp_path / "target"
    target.mkdir()
    (target / "precious.txt").write_text("do not touch")
    refused = dataset.syncer("restore", "photos", "--to", target)
    assert refused.exit_code == 2
    assert "not empty" in refused.stderr and "--force" in refused.stderr
    assert tree_bytes(target) == {"precious.txt": b"do not touch"}

    in_place = dataset.syncer("restore", "photos", "--to", target, "--in-place", "--json")
    assert in_place.exit_code == 0, in_place.output
    assert tree_bytes(target) == tree_bytes(dataset.data) | {"precious.txt": b"do not touch"}
    (target / "readme.txt").write_text("damaged")
    (target / "album/00.jpg").unlink()
    mended = dataset.syncer("restore", "photos", "--to", target, "--in-place", "--json")
    assert mended.json()["files_written"] == 2
    assert tree_bytes(target) == tree_bytes(dataset.data) | {"precious.txt": b"do not touch"}

    forced = dataset.syncer("restore", "photos", "--to", target, "--force")
    assert forced.exit_code == 0, forced.output
    assert tree_bytes(target) == tree_bytes(dataset.data)


def mount_tmpfs(mountpoint, size):
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)],
                             capture_output=True, text=True)
    assert mounted.returncode == 0, f"this test needs to mount a {size} tmpfs (as root): {mounted.stderr}"


@pytest.fixture
def small_filesystem(tmp_path):
    mountpoint = tmp_path / "small"
    mount_tmpfs(mountpoint, "1m")
    yield mountpoint
    subprocess.run(["umount", str(mountpoint)], check=True)


@pytest.fixture
def fresh_disk(tmp_path):
    mountpoint = tmp_path / "disk"
    mount_tmpfs(mountpoint, "16m")
    yield mountpoint
    subprocess.run(["umount", str(mountpoint)], check=True)


def test_restore_onto_a_mount_point_and_only_the_included_paths(tmp_path, fresh_disk):
    dataset = make_dataset(tmp_path, FILES)
    assert dataset.syncer("push").exit_code == 0
    (fresh_disk / "lost+found").mkdir()
    result = dataset.syncer("restore", "photos", "--to", fresh_disk)
    assert result.exit_code == 0, result.output
    assert tree_bytes(fresh_disk) == tree_bytes(dataset.data)
    assert sorted(p.name for p in fresh_disk.iterdir()) == ["album", "deep", "lost+found", "readme.txt"]

    some = tmp_path / "some"
    partial = dataset.syncer("restore", "photos", "--to", some, "--include", "album/0*.jpg", "--include", "deep")
    assert partial.exit_code == 0, partial.output
    expected = {path: content for path, content in tree_bytes(dataset.data).items()
                if path.startswith(("album/0", "deep/"))}
    assert tree_bytes(some) == expected and len(expected) == 11


def test_restore_onto_a_full_filesystem_exits_3_and_leaves_the_target_untouched(tmp_path, small_filesystem):
    dataset = make_dataset(tmp_path, {f"big-{n}.bin": os.urandom(600_000) for n in range(4)})
    assert dataset.syncer("push").exit_code == 0
    target = small_filesystem / "restore-here"
    target.mkdir()
    (target / "old.txt").write_text("the previous copy")
    result = dataset.syncer("restore", "photos", "--to", target, "--force")
    assert result.exit_code == 3, result.output
    assert "the target was not touched" in result.stderr and "Traceback" not in result.output
    assert tree_bytes(target) == {"old.txt": b"the previous copy"}
    assert sorted(path.name for path in small_filesystem.iterdir()) == ["restore-here"]


def test_a_snapshot_holding_a_link_that_escapes_is_refused(tmp_path):
    dataset = make_dataset(tmp_path, {"inside.txt": "fine"})
    os.symlink("../../../../../../etc/passwd", dataset.data / "escape")
    os.symlink("inside.txt", dataset.data / "harmless")
    assert dataset.syncer("push").exit_code == 0
    target = tmp_path / "target"
    result = dataset.syncer("restore", "photos", "--to", target)
    assert result.exit_code == 1, result.output
    assert "escape" in result.stderr and "symlink pointing outside" in result.stderr
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if "syncer-restore" in p.name]


def test_drill_fails_when_restored_files_differ_from_the_authority(tmp_path):
    # As in the demo: the local copy (pushed) has one file changed at the same size and
    # one truncated, so the snapshot matches its manifest but not the authority.
    authority = tmp_path / "authority"
    for relative, content in FILES.items():
        (authority / relative).parent.mkdir(parents=True, exist_ok=True)
        (authority / relative).write_bytes(content)
    dataset = make_dataset(tmp_path, FILES, authority=authority)
    with open(dataset.data / "album/03.jpg", "r+b") as handle:
        handle.seek(100)
        handle.write(b"\xff\x00\xff")
    with open(dataset.data / "deep/er/still.bin", "r+b") as handle:
        handle.truncate(1000)
    assert dataset.syncer("run").exit_code == 1  # verify's findings; the push itself succeeded
    drilled = dataset.syncer("drill", "photos", "--full", "--json")
    assert drilled.exit_code == 1, drilled.output
    report = drilled.json()
    assert report["passed"] is False and report["exit_code"] == 1
    assert sorted(report["authority"]["differs"]) == ["album/03.jpg", "deep/er/still.bin"]
    assert sorted(failure["path"] for failure in report["failures"]) == ["album/03.jpg", "deep/er/still.bin"]
    shown = dataset.syncer("drill", "photos", "--full")
    assert shown.exit_code == 1
    assert "FAILED" in shown.stdout and "PASSED" not in shown.stdout
    assert "album/03.jpg: matches the manifest but differs from the authority" in shown.stdout


@pytest.mark.restic_versions
def test_a_repository_pushed_to_before_is_never_created_again(tmp_path):
    dataset = make_dataset(tmp_path, FILES)
    first = dataset.syncer("push")
    assert first.exit_code == 0 and "creating it (restic init)" in first.stderr
    assert dataset.syncer("push").exit_code == 0
    # The USB disk is not mounted: the repository's folder is gone.
    os.rename(tmp_path / "repo", tmp_path / "unmounted")
    pushed = dataset.syncer("push", "--json")
    assert pushed.exit_code == 3, pushed.output
    error = pushed.json()["datasets"][0]["error"]
    assert "is missing or not mounted (syncer first pushed to it on" in error
    assert "`syncer push --init photos`" in error and "restic init" not in pushed.stderr
    assert not (tmp_path / "repo").exists()
    # A new board (fresh state) whose policy says the repository exists: the same refusal.
    policy = dataset.policies / "photos.yaml"
    policy.write_text(policy.read_text().replace("  password_file:", "  exists: true\n  password_file:"))
    fresh = dataset.syncer("--state-dir", tmp_path / "new-board", "push")
    assert fresh.exit_code == 3 and "says offsite.exists: true" in fresh.stderr, fresh.output
    assert not (tmp_path / "repo").exists()
    # Mounted again: the history is all there.
    os.rename(tmp_path / "unmounted", tmp_path / "repo")
    assert dataset.syncer("push").exit_code == 0
    assert len(dataset.syncer("snapshots", "photos", "--json").json()["datasets"][0]["snapshots"]) == 3
    # Asked for explicitly, a lost repository is started anew.
    shutil.rmtree(tmp_path / "repo")
    created = dataset.syncer("push", "--init")
    assert created.exit_code == 0 and "asked with --init" in created.stderr, created.output
    assert len(dataset.syncer("snapshots", "photos", "--json").json()["datasets"][0]["snapshots"]) == 1


def test_an_unreachable_s3_repository_is_not_called_missing(tmp_path):
    repository = f"s3:http://127.0.0.1:{free_port()}/bucket/photos"  # nothing listens there
    dataset = make_dataset(tmp_path, FILES, repository=repository,
                           env_text="AWS_ACCESS_KEY_ID=test\nAWS_SECRET_ACCESS_KEY=test-secret\n")
    for command in (["push"], ["snapshots", "photos"], ["check", "photos"], ["drill", "photos"]):
        result = dataset.syncer(*command)
        assert result.exit_code == 3, (command, result.output)
        assert "is unreachable (connection refused)" in result.output, (command, result.output)
        assert "does not exist" not in result.output and "syncer push" not in result.output, result.output
        assert "restic init" not in result.output


def test_an_include_that_matches_nothing_is_an_error_not_an_empty_restore(tmp_path):
    dataset = make_dataset(tmp_path, FILES)
    assert dataset.syncer("push").exit_code == 0
    restored = dataset.syncer("restore", "photos", "--to", tmp_path / "out", "--include", "albums/*.jpg")
    assert restored.exit_code == 1, restored.output
    assert "--include albums/*.jpg matches no file of snapshot" in restored.stderr
    assert restored.stderr.count("matches no file") == 1  # said once
    assert not (tmp_path / "out").exists()


def test_plurals_and_errors_said_once(tmp_path):
    dataset = make_dataset(tmp_path, FILES)
    assert dataset.syncer("push").exit_code == 0
    listed = dataset.syncer("snapshots", "photos")
    assert "1 snapshot\n" in listed.stdout and "1 snapshots" not in listed.stdout
    os.rename(tmp_path / "repo", tmp_path / "unmounted")
    failed = dataset.syncer("push")
    assert failed.exit_code == 3
    assert failed.output.count("is missing or not mounted") == 1, failed.output
    (dataset.policies / "photos.yaml").write_text("path: [\n")
    broken = dataset.syncer("verify")
    assert broken.exit_code == 2 and "1 problem in the policies" in broken.stderr and "(s)" not in broken.stderr
    absent = dataset.syncer("--policies", tmp_path / "nowhere", "verify")
    assert absent.exit_code == 2
    assert f"policies directory {tmp_path / 'nowhere'} does not exist" in absent.stderr
    assert "--policies DIR or SYNCER_POLICIES" in absent.stderr
