"""push, snapshots, retention, run and verify's offsite comparison, against real restic
with a local repository."""

import json
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.integration.offsite_support import PASSWORD, make_dataset, tree_bytes
from tests.support import REPO, require_tool, restic_setting, write_policy, write_secret

FILES = {
    "2019/summer/IMG_0001.jpg": os.urandom(200_000),
    "2019/summer/IMG_0002.jpg": os.urandom(90_000),
    "documents/2020 déclaration.pdf": os.urandom(50_000),
    "music/Sigur Rós/写真-1.png": os.urandom(30_000),
    "notes/empty.txt": b"",
    "notes/a[1]*.txt": b"glob characters in a name\n",
}


@pytest.mark.restic_versions
def test_push_then_restore_is_byte_identical(tmp_path):
    excluded = {"work.tmp": b"scratch", ".cache/thumbs/1.bin": b"thumb", "2019/.cache/x": b"nested cache"}
    dataset = make_dataset(tmp_path, FILES | excluded, exclude=["*.tmp", ".cache/**"])
    pushed = dataset.syncer("push", "--json")
    assert pushed.exit_code == 0, pushed.output
    row = pushed.json()["datasets"][0]
    assert "does not exist yet: creating it (restic init)" in pushed.stderr
    assert len(row["snapshot"]) == 64 and row["files_new"] == len(FILES) + 3  # + manifest, policy, 2019/.cache/x
    assert row["unreadable"] == []

    listed = json.loads(dataset.restic("snapshots", "--json").stdout)
    assert [snapshot["id"] for snapshot in listed] == [row["snapshot"]]
    assert listed[0]["tags"] == ["syncer:photos"] and listed[0]["hostname"] == "photos"
    assert any(path.endswith("/manifests/photos") for path in listed[0]["paths"])

    restored = dataset.syncer("restore", "photos", "--to", tmp_path / "restored")
    assert restored.exit_code == 0, restored.output
    restored_tree = tree_bytes(tmp_path / "restored")
    assert restored_tree == {path: content for path, content in tree_bytes(dataset.data).items()
                             if path not in ("work.tmp", ".cache/thumbs/1.bin")}
    assert "2019/.cache/x" in restored_tree  # ".cache/**" is anchored at the dataset, as verify reads it
    assert not [p for p in tmp_path.iterdir() if "syncer-restore" in p.name]  # no staging left behind

    with sqlite3.connect(dataset.state / "state.db") as db:
        result, summary = db.execute("SELECT result, summary FROM runs WHERE action='push'").fetchone()
    assert result == "ok" and json.loads(summary)["snapshot"] == row["snapshot"]
    assert PASSWORD not in pushed.output + restored.output + summary


def test_push_of_a_cloud_dataset_never_reads_the_services_credentials(tmp_path):
    dataset = make_dataset(tmp_path, {"IMG_0001.jpg": b"photo"})
    # SmugMug as the authority, with a credentials file still to be filled in: push only talks to restic
    unfinished = write_secret(tmp_path / "secrets" / "smugmug.env", "# SMUGMUG_API_KEY= comes later\n")
    document = yaml.safe_load((dataset.policies / "photos.yaml").read_text())
    document["authority"] = {"type": "smugmug", "credentials": str(unfinished)}
    write_policy(dataset.policies, "photos", document)
    pushed = dataset.syncer("push", "--json")
    assert pushed.exit_code == 0, pushed.output
    assert pushed.json()["datasets"][0]["files"] == 1


@pytest.mark.restic_versions
def test_a_push_the_watcher_triggers_makes_no_snapshot_when_nothing_changed(tmp_path, monkeypatch):
    """restic 0.17+'s backup --skip-if-unchanged; 0.14 has none and makes a snapshot anyway."""
    from syncer.actions.push import run_push
    from syncer.index.db import StateDB
    from syncer.policy import load_policies
    from syncer.restic.runner import supports

    for key, value in restic_setting().items():
        monkeypatch.setenv(key, value)
    # restic's snapshot holds the folders above the dataset too, so the dataset lives in
    # the checkout's git-ignored .cache rather than below /tmp, and restic's own temporary
    # files go to this test's folder: written in /tmp, they would change a folder above a
    # clone that CI keeps in /tmp. Whatever else changes those folders between the two
    # pushes makes the second snapshot rightly differ: the pair is then run again.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    (REPO / ".cache").mkdir(exist_ok=True)
    for _ in range(5):
        root = Path(tempfile.mkdtemp(prefix="test-skip-if-unchanged-", dir=REPO / ".cache"))
        try:
            dataset = make_dataset(root, FILES)
            policies = load_policies(dataset.policies)
            db = StateDB(dataset.state)
            try:
                [first] = run_push(policies, db)["datasets"]
                above = folders_above(root)
                [report] = run_push(policies, db, skip_if_unchanged=True)["datasets"]
                unchanged_above = folders_above(root) == above
            finally:
                db.close()
            snapshots = json.loads(dataset.restic("snapshots", "--json").stdout)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        if unchanged_above:
            break
    else:
        pytest.fail("the folders above the test's dataset changed during every pair of pushes")
    assert first["exit_code"] == 0 and first["unchanged"] is False, first
    if supports("skip_if_unchanged", policies[0].restic_binary):
        assert report["unchanged"] is True and [s["id"] for s in snapshots] == [report["snapshot"]], report
    else:
        assert report["unchanged"] is False and len(snapshots) == 2, report
        assert report["snapshot"] == snapshots[-1]["id"]


def test_second_push_after_a_small_change_adds_little(tmp_path):
    files = {f"big/{number}.bin": os.urandom(400_000) for number in range(5)} | {"small.txt": b"one\n"}
    dataset = make_dataset(tmp_path, files, retention={"keep_daily": 7})
    first = dataset.syncer("push", "--json")
    assert first.exit_code == 0, first.output
    (dataset.data / "small.txt").write_bytes(b"one and a bit more\n")
    second = dataset.syncer("push", "--json")
    assert second.exit_code == 0, second.output
    first_row, second_row = first.json()["datasets"][0], second.json()["datasets"][0]
    assert first_row["bytes_added"] > 1_900_000
    assert second_row["files_changed"] == 2  # small.txt and the manifest
    assert second_row["bytes_added"] < 50_000
    snapshots = dataset.syncer("snapshots", "photos", "--json").json()["datasets"][0]["snapshots"]
    assert [s["id"] for s in snapshots] == [first_row["snapshot"], second_row["snapshot"]]
    # retention ran with the first push; the second, the same day, skips it (offsite.forget: daily)
    assert first_row["retention_applied"] is True and second_row["retention_applied"] is False
    assert 10 * 2**20 < second_row["restic_peak_rss_bytes"] < 2**30  # restic's own memory, sampled


def test_retention_keeps_what_the_rules_say_and_only_for_this_dataset(tmp_path):
    photos = make_dataset(tmp_path, {"a.txt": "a"}, retention={"keep_last": 2}, extra={"forget": "always"})
    music = make_dataset(tmp_path, {"b.txt": "b"}, name="music", repository=photos.repository)
    assert music.syncer("push").exit_code == 0
    ids = []
    for round_number in range(4):
        (photos.data / "a.txt").write_text(f"version {round_number}")
        pushed = photos.syncer("push", "photos", "--json")
        assert pushed.exit_code == 0, pushed.output
        ids.append(pushed.json()["datasets"][0]["snapshot"])
    last = pushed.json()["datasets"][0]
    assert last["kept"] == 2 and last["forgotten"] == 1
    listed = json.loads(photos.restic("snapshots", "--json").stdout)
    by_tag = {}
    for snapshot in listed:
        by_tag.setdefault(snapshot["tags"][0], []).append(snapshot["id"])
    assert sorted(by_tag["syncer:photos"]) == sorted(ids[-2:])
    assert len(by_tag["syncer:music"]) == 1  # another dataset's history is never touched
    # prune (default weekly) ran once, when the first snapshot was forgotten
    with sqlite3.connect(photos.state / "state.db") as db:
        prunes = db.execute("SELECT result FROM runs WHERE dataset='photos' AND action='prune'").fetchall()
    assert prunes == [("ok",)]
    assert photos.restic("check").returncode == 0


def test_run_verifies_then_pushes_and_verify_compares_with_the_snapshot(tmp_path):
    dataset = make_dataset(tmp_path, FILES)
    before = dataset.syncer("verify", "--json")
    assert before.exit_code == 0, before.output
    assert "does not exist" in before.json()["datasets"][0]["offsite"]["error"]
    assert not (tmp_path / "repo").exists()  # only push creates a repository

    ran = dataset.syncer("run", "--json")
    assert ran.exit_code == 0, ran.output
    report = ran.json()
    assert report["verify"]["datasets"][0]["counts"]["ok"] == len(FILES)
    assert report["push"]["datasets"][0]["snapshot"]

    (dataset.data / "notes/empty.txt").write_text("not empty any more")
    after = dataset.syncer("verify", "--json").json()["datasets"][0]["offsite"]
    assert after["snapshot"] == report["push"]["datasets"][0]["snapshot"]
    assert (after["matching"], after["differing"], after["not_in_snapshot"]) == (len(FILES) - 1, 1, 0)


@pytest.mark.restic_versions
def test_snapshots_check_and_drill_need_nothing_from_the_board(tmp_path):
    dataset = make_dataset(tmp_path, FILES)
    assert dataset.syncer("push").exit_code == 0
    # A laptop: a fresh state directory, and the dataset's path does not exist here.
    laptop_state = tmp_path / "laptop-state"
    os.rename(dataset.data, tmp_path / "elsewhere")
    common = ["--state-dir", laptop_state]
    drilled = dataset.syncer(*common, "drill", "photos", "--full", "--json")
    assert drilled.exit_code == 0, drilled.output
    report = drilled.json()
    assert report["passed"] is True and report["files_checked"] == len(FILES)
    assert len(report["snapshot"]) == 64  # the full ID, though restic 0.14 printed the short one
    assert report["bytes_restored"] == sum(len(content) for content in FILES.values())
    assert report["throughput_mib_s"] > 0 and report["projected_restore_seconds"] >= 0
    assert report["failures"] == [] and report["items"] == []  # --full lists only the files that are not ok
    assert report["restic_peak_rss_bytes"] > 0 and report["dataset_files"] == len(FILES)
    checked = dataset.syncer(*common, "check", "--read-data-subset", "100%", "--json")
    assert checked.exit_code == 0 and checked.json()["datasets"][0]["ok"] is True
    assert checked.json()["datasets"][0]["restic_peak_rss_bytes"] > 0
    with sqlite3.connect(laptop_state / "state.db") as db:
        assert db.execute("SELECT result FROM runs WHERE action='drill'").fetchall() == [("ok",)]


def test_the_projected_restore_time_is_the_median_of_recent_drills_with_its_spread(tmp_path):
    dataset = make_dataset(tmp_path, FILES)
    assert dataset.syncer("push").exit_code == 0
    reports = []
    for _ in range(3):
        drilled = dataset.syncer("drill", "photos", "--json")
        assert drilled.exit_code == 0, drilled.output
        reports.append(drilled.json())
    # The default sample is topped up to 64 MiB: here that is the whole dataset.
    assert reports[0]["bytes_restored"] == sum(len(content) for content in FILES.values())
    assert [report["projection_drills"] for report in reports] == [1, 2, 3]
    last = reports[-1]
    low, high = last["projected_restore_range"]
    assert low <= last["projected_restore_seconds"] <= high and last["projection_enough_bytes"] is True
    with sqlite3.connect(dataset.state / "state.db") as db:
        summaries = [json.loads(row[0]) for row in db.execute("SELECT summary FROM runs WHERE action='drill'")]
    assert all(summary["restore_rate_bytes_per_second"] > 0 and "restic_startup_seconds" in summary
               for summary in summaries)
    shown = dataset.syncer("drill", "photos")
    assert "over the last 4 drills" in shown.stdout, shown.output
    few = dataset.syncer("--state-dir", tmp_path / "laptop", "drill", "photos", "--sample", "1")
    assert "from this drill only" in few.stdout and "too few bytes restored" in few.stdout, few.output


def test_a_missing_repository_is_not_created_by_drill(tmp_path):
    dataset = make_dataset(tmp_path, FILES)
    drilled = dataset.syncer("drill", "photos")
    assert drilled.exit_code == 3
    assert "does not exist" in drilled.stderr and "Traceback" not in drilled.output
    assert not (tmp_path / "repo").exists()


def test_files_restic_cannot_read_are_a_warning_that_lists_them(tmp_path):
    dataset = make_dataset(tmp_path, {"ok.txt": "fine", "locked/secret.txt": "restic may not read this"})
    # restic without the capabilities that let root read anything: a mode-000 file is
    # then unreadable to it (restic's exit 3), while syncer's own scan still reads it.
    restic, setpriv = require_tool("restic"), require_tool("setpriv")
    wrapper = tmp_path / "bin" / "restic"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec {setpriv} --inh-caps=-dac_override,-dac_read_search '
                       f'--bounding-set=-dac_override,-dac_read_search {restic} "$@"\n')
    wrapper.chmod(0o755)
    (dataset.data / "locked/secret.txt").chmod(0)
    pushed = dataset.syncer("push", "--json", env={"PATH": f"{wrapper.parent}:{os.environ['PATH']}"})
    assert pushed.exit_code == 1, pushed.output
    row = pushed.json()["datasets"][0]
    assert [entry["path"] for entry in row["unreadable"]] == [str(dataset.data / "locked/secret.txt")]
    assert "Permission denied" in row["unreadable"][0]["reason"]
    assert row["snapshot"] and "secret.txt" in pushed.stderr


def stored_node(dataset, snapshot_id, path):
    """The node (metadata and subtree ID) restic stored for the absolute `path` in a snapshot."""
    tree, node = json.loads(dataset.restic("cat", "snapshot", snapshot_id).stdout)["tree"], None
    for name in path.strip("/").split("/"):
        listing = json.loads(dataset.restic("cat", "blob", tree).stdout)
        node = next(entry for entry in listing["nodes"] if entry["name"] == name)
        tree = node.get("subtree")
    return node


def test_an_unchanged_dataset_gives_the_same_snapshot_tree_whatever_the_state_dir(tmp_path):
    dataset = make_dataset(tmp_path, FILES)
    pushes = [dataset.syncer("push", "--json"), dataset.syncer("push", "--json"),
              dataset.syncer("--state-dir", tmp_path / "new-board", "push", "--json")]  # a new board
    assert [pushed.exit_code for pushed in pushes] == [0, 0, 0], [pushed.output for pushed in pushes]
    rows = [pushed.json()["datasets"][0] for pushed in pushes]
    for row in rows[1:]:
        assert (row["files_new"], row["files_changed"]) == (0, 0), row
        assert row["files_unmodified"] == len(FILES) + 2  # the data, manifest and policy file: restic found the parent
    listed = {snapshot["id"]: snapshot for snapshot in json.loads(dataset.restic("snapshots", "--json").stdout)}
    assert [listed[row["snapshot"]].get("parent") for row in rows[1:]] == [rows[0]["snapshot"], rows[1]["snapshot"]]
    paths = listed[rows[0]["snapshot"]]["paths"]
    assert all(listed[row["snapshot"]]["paths"] == paths for row in rows)
    manifest = next(path for path in paths if path.endswith("/manifests/photos"))
    assert not manifest.startswith((str(dataset.state), str(tmp_path / "new-board")))
    # The trees of both backed-up folders are the same objects in every snapshot (the
    # snapshots' root trees also hold the folders above them, here /tmp, which other
    # processes change).
    for path in paths:
        nodes = [stored_node(dataset, row["snapshot"], path) for row in rows]
        assert nodes[0] == nodes[1] == nodes[2], path


def test_check_reads_every_pack_once_per_read_data_cycle(tmp_path):
    from syncer.notify.textfile import render_metrics

    dataset = make_dataset(tmp_path, FILES, extra={"read_data": {"checks": 2}})
    assert dataset.syncer("push").exit_code == 0
    subsets, progress = [], []
    for _ in range(3):
        checked = dataset.syncer("check", "photos", "--json")
        assert checked.exit_code == 0, checked.output
        [row] = checked.json()["datasets"]
        subsets.append(row["read_data_subset"])
        progress.append(row["read_data"])
    assert subsets == ["1/2", "2/2", "1/2"]  # every slice once, then a new cycle
    assert [step["slices_read"] for step in progress] == [1, 0, 1]
    assert progress[0]["last_full_read_at"] is None and progress[1]["last_full_read_at"] is not None
    # a subset asked for on the command line is read as well, and leaves the cycle where it is
    assert dataset.syncer("check", "photos", "--read-data-subset", "10%").exit_code == 0
    status = dataset.syncer("status", "--json")
    [row] = status.json()["datasets"]
    assert row["read_data"] == progress[2], row["read_data"]
    metrics = render_metrics(status.json())
    assert 'syncer_read_data_cycle_done_ratio{dataset="photos"} 0.5' in metrics
    assert "syncer_read_data_last_full_timestamp_seconds" in metrics
    shown = dataset.syncer("status")
    assert "read data: 1/2 of this cycle; every pack last read" in shown.stdout, shown.output


def folders_above(path):
    """(mtime, ctime) of `path` and of every folder above it: restic's snapshot holds them."""
    path = Path(path)
    return [(info.st_mtime_ns, info.st_ctime_ns) for info in (os.stat(folder) for folder in [path, *path.parents])]
