"""scrub finds bit rot that kept size and mtime; repair replaces it with a copy
proven good, and never leaves a half-written file under the real name."""

import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.support import REPO, run_syncer, write_policy, write_tree

FILES = {f"photos/{n:02}.jpg": bytes([n]) * (40_000 + n) for n in range(10)}


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rot(path, offset=100):
    """Flip one byte and put the mtime back, as a storage fault would leave it."""
    info = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


@pytest.fixture
def dataset(tmp_path):
    write_tree(tmp_path / "local", FILES)
    write_tree(tmp_path / "authority", FILES)
    write_policy(tmp_path / "policies", "photos", {
        "path": str(tmp_path / "local"), "authority": {"type": "local", "path": str(tmp_path / "authority")}})
    assert cli(tmp_path, "verify").exit_code == 0
    return tmp_path


def cli(tmp_path, *arguments):
    return run_syncer(*arguments, "--json", policies=tmp_path / "policies", state=tmp_path / "state")


def only(result):
    [dataset] = result.json()["datasets"]
    return dataset


def test_bit_rot_is_found_and_repaired_from_the_authority(dataset):
    target = dataset / "local/photos/03.jpg"
    good = digest(target)
    rot(target)
    scrubbed = cli(dataset, "scrub", "--fraction", "100%")
    assert scrubbed.exit_code == 1, scrubbed.output
    report = only(scrubbed)
    assert report["counts"]["corrupt"] == 1 and report["counts"]["confirmed"] == 9
    assert report["items"][0]["path"] == "photos/03.jpg" and report["items"][0]["status"] == "corrupt"
    repaired = cli(dataset, "repair")
    assert repaired.exit_code == 0, repaired.output
    assert only(repaired)["items"] == [{"path": "photos/03.jpg", "status": "repaired", "source": "authority",
                                        "kind": "corrupt"}]
    assert digest(target) == good
    [kept] = (dataset / "state/quarantine/photos").rglob("03.jpg")
    assert digest(kept) != good  # the bad copy is kept, not deleted
    assert cli(dataset, "scrub", "--fraction", "100%").exit_code == 0
    assert cli(dataset, "verify").exit_code == 0


def test_a_symlink_put_in_a_files_place_is_not_read_nor_repaired_as_rot(dataset, tmp_path):
    """Outside the dataset, a file of the same size and mtime but other content: scrub
    does not follow the symlink to it, so it finds no rot, and repair replaces nothing."""
    target = dataset / "local/photos/05.jpg"
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"x" * target.stat().st_size)
    os.utime(outside, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns))
    target.unlink()
    target.symlink_to(outside)
    result = cli(dataset, "scrub", "--fraction", "100%")
    assert result.exit_code == 0, result.output
    assert only(result)["counts"]["corrupt"] == 0 and only(result)["counts"]["edited"] == 1
    assert only(cli(dataset, "repair"))["items"] == []
    assert target.is_symlink() and outside.read_bytes() == b"x" * outside.stat().st_size


def test_a_legitimate_edit_is_not_corruption(dataset):
    target = dataset / "local/photos/04.jpg"
    target.write_bytes(b"edited by the user")
    result = cli(dataset, "scrub", "--fraction", "100%")
    assert result.exit_code == 0, result.output
    assert only(result)["counts"]["edited"] == 1 and only(result)["counts"]["corrupt"] == 0
    assert only(cli(dataset, "repair"))["items"] == []
    assert target.read_bytes() == b"edited by the user"


def test_a_chmod_does_not_hide_or_fake_corruption(dataset):
    target = dataset / "local/photos/05.jpg"
    target.chmod(0o600)  # moves ctime only
    assert cli(dataset, "scrub", "--fraction", "100%").exit_code == 0


def test_bad_everywhere_is_reported_unrecoverable_and_left_alone(dataset):
    target = dataset / "local/photos/06.jpg"
    rot(target)
    rot(dataset / "authority/photos/06.jpg", offset=200)
    assert cli(dataset, "scrub", "--fraction", "100%").exit_code == 1
    before = target.read_bytes()
    result = cli(dataset, "repair")
    assert result.exit_code == 1
    [item] = only(result)["items"]
    assert item["status"] == "unrecoverable" and item["path"] == "photos/06.jpg"
    assert target.read_bytes() == before


def test_a_missing_file_is_restored_from_the_authority(dataset):
    (dataset / "local/photos/07.jpg").unlink()
    assert cli(dataset, "verify").exit_code == 1
    result = cli(dataset, "repair")
    assert result.exit_code == 0, result.output
    assert only(result)["items"][0]["status"] == "repaired"
    assert (dataset / "local/photos/07.jpg").read_bytes() == FILES["photos/07.jpg"]


def test_dry_run_changes_nothing(dataset):
    target = dataset / "local/photos/02.jpg"
    rot(target)
    cli(dataset, "scrub", "--fraction", "100%")
    before = target.read_bytes()
    result = cli(dataset, "repair", "--dry-run")
    assert only(result)["items"][0]["status"] == "would_repair"
    assert target.read_bytes() == before


def test_repeated_scrubs_cover_the_dataset_oldest_first(dataset):
    seen = []
    for _ in range(5):
        result = cli(dataset, "scrub", "--fraction", "20%")
        assert result.exit_code == 0
        seen.append(only(result)["counts"]["confirmed"])
    assert all(count >= 2 for count in seen)
    assert sum(seen) >= 10
    assert only(result)["confirmed_share_30d"] == 1.0


def test_bad_fraction_is_usage_error(dataset):
    result = cli(dataset, "scrub", "--fraction", "150%")
    assert result.exit_code == 2 and "--fraction" in result.stderr


def test_an_interrupted_repair_leaves_no_half_file(tmp_path):
    big = os.urandom(3 * 2**20)
    write_tree(tmp_path / "local", {"video.mp4": big})
    write_tree(tmp_path / "authority", {"video.mp4": big})
    write_policy(tmp_path / "policies", "videos", {
        "path": str(tmp_path / "local"), "authority": {"type": "local", "path": str(tmp_path / "authority")},
        "scrub": {"rate_mib_s": 1}})
    assert cli(tmp_path, "verify").exit_code == 0
    target = tmp_path / "local/video.mp4"
    rot(target, offset=2**20)
    rotten = target.read_bytes()
    run_syncer("scrub", "--fraction", "100%", "--rate", "1000", policies=tmp_path / "policies",
               state=tmp_path / "state")
    process = subprocess.Popen([sys.executable, "-m", "syncer", "--policies", str(tmp_path / "policies"),
                                "--state-dir", str(tmp_path / "state"), "repair"], cwd=REPO,
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not list((tmp_path / "local").glob(".syncer-tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert list((tmp_path / "local").glob(".syncer-tmp-*")), "the repair never started writing"
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert target.read_bytes() == rotten  # untouched: neither half-written nor lost
    result = run_syncer("repair", "--json", policies=tmp_path / "policies", state=tmp_path / "state")
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == big
    assert not list((tmp_path / "local").glob(".syncer-tmp-*"))


@pytest.mark.restic_versions
def test_repaired_from_the_snapshot_when_the_authority_copy_is_bad_too(tmp_path):
    from tests.integration.offsite_support import PASSWORD, make_dataset

    dataset = make_dataset(tmp_path, FILES)
    authority = write_tree(tmp_path / "authority", FILES)
    policy = dataset.policies / "photos.yaml"
    document = yaml.safe_load(policy.read_text())
    document["authority"]["path"] = str(authority)
    policy.write_text(yaml.safe_dump(document))
    assert dataset.syncer("push").exit_code == 0
    target = dataset.data / "photos/08.jpg"
    good = digest(target)
    rot(target)
    rot(authority / "photos/08.jpg", offset=300)
    scrubbed = dataset.syncer("scrub", "--fraction", "100%", "--json")
    assert scrubbed.exit_code == 1, scrubbed.output
    result = dataset.syncer("repair", "--json")
    assert result.exit_code == 0, result.output
    [item] = result.json()["datasets"][0]["items"]
    assert item == {"path": "photos/08.jpg", "status": "repaired", "source": "offsite", "kind": "corrupt"}
    assert digest(target) == good
    assert PASSWORD not in result.output


def test_repair_auto_repairs_what_the_scrub_found(dataset):
    policy = dataset / "policies/photos.yaml"
    document = yaml.safe_load(policy.read_text())
    document["repair"] = "auto"
    policy.write_text(yaml.safe_dump(document))
    target = dataset / "local/photos/01.jpg"
    good = digest(target)
    rot(target)
    result = cli(dataset, "scrub", "--fraction", "100%")
    assert result.exit_code == 1  # corruption was found, even though it is now repaired
    assert only(result)["repair"]["repaired"] == 1
    assert digest(target) == good


def test_status_shows_open_corruption_and_the_30_day_share(dataset):
    rot(dataset / "local/photos/09.jpg")
    cli(dataset, "scrub", "--fraction", "100%")
    result = cli(dataset, "status")
    assert result.exit_code == 1
    [row] = result.json()["datasets"]
    assert row["findings"]["corrupt"] == 1
    assert row["scrub_confirmed_30d"] == 0.9  # all was read; the corrupt tenth is not confirmed good


def test_verify_does_not_absorb_bit_rot_when_ctime_moved(dataset):
    """A chmod makes verify re-read the file; rotten content under the old size and
    mtime must be reported and kept for repair, not taken as the new truth."""
    target = dataset / "local/photos/05.jpg"
    good = digest(target)
    rot(target)
    target.chmod(0o600)
    result = cli(dataset, "verify")
    assert result.exit_code == 1
    [item] = only(result)["items"]
    assert item["path"] == "photos/05.jpg" and item["status"] == "changed"
    assert "unchanged size and mtime" in item["reason"]
    assert cli(dataset, "repair").exit_code == 0
    assert digest(target) == good
    assert cli(dataset, "verify").exit_code == 0


def test_verify_deep_finds_bit_rot_too(dataset):
    # Writing the byte here moves ctime (media rot would not), so a plain verify would
    # already re-read it; --deep re-reads everything regardless of the stat.
    rot(dataset / "local/photos/06.jpg")
    deep = cli(dataset, "verify", "--deep")
    assert deep.exit_code == 1
    assert "unchanged size and mtime" in only(deep)["items"][0]["reason"]


def test_the_text_report_says_what_it_means(dataset):
    rot(dataset / "local/photos/03.jpg")
    text = run_syncer("scrub", "--fraction", "100%", policies=dataset / "policies", state=dataset / "state")
    assert text.exit_code == 1, text.output
    summary = next(line for line in text.stdout.splitlines() if line.startswith("photos:"))
    assert "1 corrupt" in summary and "100%" not in summary  # the corrupt file's bytes are not confirmed good
    assert "90% of the bytes confirmed good in the last 30 days" in summary
    planned = run_syncer("repair", "--dry-run", policies=dataset / "policies", state=dataset / "state")
    assert planned.exit_code == 0, planned.output
    summary = next(line for line in planned.stdout.splitlines() if line.startswith("photos:"))
    assert summary == "photos: dry run (nothing changed): 1 would repair, 0 unrecoverable", summary
    assert "repaired" not in planned.stdout
