"""`syncer verify` end to end against a local authority: every category, the hash
cache, --strict, --deep, the lock and the JSON contract."""

import os
import subprocess
import sys

import pytest

from tests.support import run_syncer, write_policy, write_tree

FILES = {
    "a.txt": "alpha",
    "dir/b.bin": b"\x00\x01" * 5000,
    "dir/sub/ç é.txt": "non-ascii name",
    "keep/same.txt": "same",
    "skip.tmp": "excluded",
}


@pytest.fixture
def dataset(tmp_path):
    local = write_tree(tmp_path / "local", FILES)
    authority = write_tree(tmp_path / "authority", FILES)
    write_policy(tmp_path / "policies", "docs", {
        "path": str(local), "exclude": ["*.tmp"],
        "authority": {"type": "local", "path": str(authority)}})
    return tmp_path


def verify(tmp_path, *arguments, env=None):
    return run_syncer("verify", "--json", *arguments, policies=tmp_path / "policies", state=tmp_path / "state",
                      env=env)


def only(report):
    [dataset] = report["datasets"]
    return dataset


def test_identical_copies_are_all_ok(dataset):
    result = verify(dataset)
    assert result.exit_code == 0, result.output
    report = only(result.json())
    assert report["name"] == "docs"
    assert report["counts"] == {"ok": 4, "missing_local": 0, "extra_local": 0, "changed": 0, "unverifiable": 0}
    assert report["items"] == []


def test_every_category_is_reported(dataset):
    local, authority = dataset / "local", dataset / "authority"
    (local / "a.txt").unlink()
    (local / "extra.txt").write_text("only here")
    (local / "dir/b.bin").write_bytes(b"\x00\x02" * 5000)  # same size, different bytes
    os.symlink("a.txt", local / "link")
    (authority / "missing/deep").mkdir(parents=True)
    (authority / "missing/deep/c.txt").write_text("authority only")
    result = verify(dataset)
    assert result.exit_code == 1, result.output
    report = only(result.json())
    assert report["counts"] == {"ok": 2, "missing_local": 2, "extra_local": 1, "changed": 1, "unverifiable": 1}
    statuses = {item["path"]: item["status"] for item in report["items"]}
    assert statuses == {"a.txt": "missing_local", "missing/deep/c.txt": "missing_local",
                        "extra.txt": "extra_local", "dir/b.bin": "changed", "link": "unverifiable"}


def test_unverifiable_only_is_exit_0_unless_strict(dataset):
    os.symlink("a.txt", dataset / "local" / "link")
    assert verify(dataset).exit_code == 0
    assert verify(dataset, "--strict").exit_code == 1


def test_changed_size_is_named_in_the_reason(dataset):
    (dataset / "local" / "a.txt").write_text("alpha, longer")
    [item] = only(verify(dataset).json())["items"]
    assert item == {"path": "a.txt", "status": "changed", "reason": "size 13 here, 5 at the authority"}


def test_same_size_other_content_names_the_checksum_that_differs(dataset):
    (dataset / "local" / "a.txt").write_text("ALPHA")
    [item] = only(verify(dataset).json())["items"]
    assert item == {"path": "a.txt", "status": "changed", "reason": "content differs (sha256)"}
    shown = run_syncer("verify", policies=dataset / "policies", state=dataset / "state")
    assert "a.txt  (content differs (sha256))" in shown.stdout


def test_hash_cache_rehashes_only_what_changed(dataset):
    first = only(verify(dataset).json())
    assert first["local"]["hashed"] == 4
    second = only(verify(dataset).json())
    assert second["local"]["hashed"] == 0
    (dataset / "local" / "keep/same.txt").write_text("SAME")
    third = verify(dataset)
    assert only(third.json())["local"]["hashed"] == 1
    assert {i["path"]: i["status"] for i in only(third.json())["items"]} == {"keep/same.txt": "changed"}
    deep = only(verify(dataset, "--deep").json())
    assert deep["local"]["hashed"] == 4


def test_a_deleted_file_leaves_the_index(dataset):
    verify(dataset)
    (dataset / "local" / "dir/sub/ç é.txt").unlink()
    report = only(verify(dataset).json())
    assert report["local"]["files"] == 3
    assert {i["path"]: i["status"] for i in report["items"]} == {"dir/sub/ç é.txt": "missing_local"}


def test_human_report_shows_table_and_paths(dataset):
    (dataset / "local" / "a.txt").unlink()
    result = run_syncer("verify", policies=dataset / "policies", state=dataset / "state")
    assert result.exit_code == 1
    assert "missing_local" in result.stdout and "a.txt" in result.stdout


def test_human_report_caps_the_list(dataset):
    write_tree(dataset / "local", {f"extra/{n:03}.txt": str(n) for n in range(30)})
    result = run_syncer("verify", policies=dataset / "policies", state=dataset / "state")
    assert result.exit_code == 1
    assert "... and 10 more (use --json for the full list)" in result.stdout
    assert len(only(verify(dataset).json())["items"]) == 30


def test_unknown_dataset_is_usage_error(dataset):
    result = run_syncer("verify", "photos", policies=dataset / "policies", state=dataset / "state")
    assert result.exit_code == 2
    assert "unknown dataset 'photos'" in result.stderr


def test_missing_authority_directory_is_named(dataset):
    (dataset / "authority").rename(dataset / "unmounted")
    result = run_syncer("verify", "--json", policies=dataset / "policies", state=dataset / "state")
    # a disk not mounted is this dataset's operational failure, named with its file and field
    assert result.exit_code == 3
    [row] = result.json()["datasets"]
    assert row["error"] == (f"docs.yaml: authority.path: {dataset / 'authority'} does not exist or is not a "
                            f"directory") and row["exit_code"] == 3
    assert "Traceback" not in result.output
    checked = run_syncer("check-policies", policies=dataset / "policies", state=dataset / "state")
    assert checked.exit_code == 2 and "docs.yaml: authority.path" in checked.stderr


def test_a_busy_dataset_waits_then_exits_3_naming_the_holder(dataset):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from syncer.index.lock import dataset_lock\n"
         "with dataset_lock(sys.argv[1], 'docs'):\n    print('held', flush=True); time.sleep(30)",
         str(dataset / "state")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = verify(dataset, env={"SYNCER_LOCK_WAIT": "1"})
        assert result.exit_code == 3
        assert f"PID {holder.pid}" in result.stderr
        assert "dataset docs is busy" in result.stderr
    finally:
        holder.kill()
        holder.wait()
    assert verify(dataset).exit_code == 0  # the kernel dropped the killed holder's lock


def test_non_utf8_names_are_unverifiable_not_ok(dataset):
    name = os.fsencode(dataset / "local") + b"/bad-\xff.txt"
    with open(name, "wb") as handle:
        handle.write(b"x")
    report = only(verify(dataset).json())
    assert report["counts"]["unverifiable"] == 1
    assert report["items"][0]["reason"] == "local: name is not UTF-8"


def test_status_reports_findings_and_coverage(dataset):
    (dataset / "local" / "a.txt").unlink()
    verify(dataset)
    result = run_syncer("status", "--json", policies=dataset / "policies", state=dataset / "state")
    assert result.exit_code == 1
    [row] = result.json()["datasets"]
    assert row["name"] == "docs" and row["files"] == 3
    assert row["findings"] == {"missing_local": 1}
    assert row["checksum_coverage"] == 1.0
    assert row["last"]["verify"]["result"] == "findings"


def test_the_default_state_directory_inside_a_home_dataset_is_left_out_of_it(tmp_path):
    """A user keeping their home directory: syncer's XDG state (~/.local/state/syncer)
    lies inside the dataset. It is excluded and said, never reported as extra_local."""
    home = write_tree(tmp_path / "home", FILES)
    authority = write_tree(tmp_path / "authority", FILES)
    write_policy(tmp_path / "policies", "home", {"path": str(home), "authority": {"type": "local",
                                                                                  "path": str(authority)}})
    state = home / ".local" / "state" / "syncer"  # a non-root user's default (as root the tests may not use it)
    for _ in range(2):  # the second run finds the database the first one made
        result = run_syncer("verify", "--json", policies=tmp_path / "policies", state=state)
        assert result.exit_code == 0, result.output
        assert only(result.json())["counts"] == {"ok": len(FILES), "missing_local": 0, "extra_local": 0, "changed": 0,
                                                 "unverifiable": 0}
    assert (state / "state.db").is_file()
    assert (f"home: the state directory {home / '.local/state/syncer'} is inside the dataset, so it is excluded "
            f"from it (as exclude: /.local/state/syncer)") in result.stderr
    nested = run_syncer("check-policies", policies=tmp_path / "policies", state=tmp_path)
    assert nested.exit_code == 2
    assert f"home.yaml: path: dataset path {home} is inside the state directory {tmp_path}" in nested.stderr
