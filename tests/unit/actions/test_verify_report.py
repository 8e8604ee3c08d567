"""A verify report lists a bounded number of items; the findings table holds them all."""

from syncer.actions import verify
from syncer.actions.verify import run_verify
from syncer.index.db import StateDB
from syncer.policy import load_policies
from tests.support import write_policy, write_tree

LOCAL = {"same.txt": "same", "edited.txt": "here", "only-here.txt": "x", "d/e/deep.txt": "deep"}
AUTHORITY = {"same.txt": "same", "edited.txt": "there", "only-there.txt": "y", "d/e/deep.txt": "deep"}


def verify_once(tmp_path, name, progress=None):
    write_tree(tmp_path / "data", LOCAL)
    write_tree(tmp_path / "authority", AUTHORITY)
    write_policy(tmp_path / "p", "docs", {"path": str(tmp_path / "data"),
                                          "authority": {"type": "local", "path": str(tmp_path / "authority")}})
    [policy] = load_policies(tmp_path / "p")
    db = StateDB(tmp_path / name)
    try:
        [report] = run_verify([policy], db, progress=progress)["datasets"]
    finally:
        db.close()
    return report


def test_a_report_lists_a_bounded_number_of_items_and_the_findings_table_holds_them_all(tmp_path, monkeypatch):
    from syncer.actions.common import ItemTally

    monkeypatch.setattr(verify, "ItemTally", lambda **options: ItemTally(limit=2, **options))
    report = verify_once(tmp_path, "state")
    assert report["counts"] == {"ok": 2, "missing_local": 1, "extra_local": 1, "changed": 1, "unverifiable": 0}
    assert [item["path"] for item in report["items"]] == ["edited.txt", "only-here.txt"]
    assert report["items_left_off"] == 1
    db = StateDB(tmp_path / "state")
    try:
        assert db.count_findings("docs") == {"missing_local": 1, "extra_local": 1, "changed": 1}
    finally:
        db.close()


def test_a_local_authority_is_walked_with_the_local_copy_by_one_set_of_walkers(tmp_path, monkeypatch):
    sides, scan_trees = [], verify.scan_trees

    def recorded(db, jobs, **options):
        sides.append([job.side for job in jobs])
        return scan_trees(db, jobs, **options)

    monkeypatch.setattr(verify, "scan_trees", recorded)
    report = verify_once(tmp_path, "state")
    assert sides == [["local", "authority"]]
    assert report["counts"] == {"ok": 2, "missing_local": 1, "extra_local": 1, "changed": 1, "unverifiable": 0}


def test_a_local_authority_walked_with_the_local_copy_is_said_so_and_not_listed_again(tmp_path, caplog):
    seen = []
    with caplog.at_level("INFO", logger="syncer"):
        verify_once(tmp_path, "state", progress=lambda label, files, hashed: seen.append((label, files)))
    messages = [record.getMessage() for record in caplog.records]
    assert f"docs: the authority local:{tmp_path / 'authority'}, walked with it: 4 files, 4 hashed (0.0 MiB)" \
        in messages
    assert not any("listing the authority" in message for message in messages)
    # the progress line counts both trees' files, and its label says so
    assert seen and seen[-1] == ("docs and its authority", 8)
