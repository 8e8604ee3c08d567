"""A `local` authority is indexed in a thread beside the local walk: the same report as
indexed after it, and its failure fails the verify. A report lists a bounded number of
items; the findings table holds them all."""

from syncer.actions import verify
from syncer.actions.verify import run_verify
from syncer.errors import EndpointError
from syncer.index.db import StateDB
from syncer.policy import load_policies
from tests.support import write_policy, write_tree

LOCAL = {"same.txt": "same", "edited.txt": "here", "only-here.txt": "x", "d/e/deep.txt": "deep"}
AUTHORITY = {"same.txt": "same", "edited.txt": "there", "only-there.txt": "y", "d/e/deep.txt": "deep"}


def verify_once(tmp_path, name):
    write_tree(tmp_path / "data", LOCAL)
    write_tree(tmp_path / "authority", AUTHORITY)
    write_policy(tmp_path / "p", "docs", {"path": str(tmp_path / "data"),
                                          "authority": {"type": "local", "path": str(tmp_path / "authority")}})
    [policy] = load_policies(tmp_path / "p")
    db = StateDB(tmp_path / name)
    try:
        [report] = run_verify([policy], db)["datasets"]
    finally:
        db.close()
    return report


def test_the_authority_indexed_alongside_gives_the_report_it_gives_indexed_after(tmp_path, monkeypatch):
    started = []
    original = verify.index_local_authority_alongside
    monkeypatch.setattr(verify, "index_local_authority_alongside",
                        lambda *arguments: started.append(original(*arguments)) or started[-1])
    alongside = verify_once(tmp_path, "alongside")
    assert started and started[0] is not None and not started[0].is_alive()
    monkeypatch.setattr(verify, "index_local_authority_alongside", lambda *arguments: None)
    after = verify_once(tmp_path, "after")
    assert alongside["counts"] == after["counts"] == {"ok": 2, "missing_local": 1, "extra_local": 1, "changed": 1,
                                                      "unverifiable": 0}
    assert alongside["items"] == after["items"]


def test_a_failure_indexing_the_authority_alongside_fails_the_verify(tmp_path, monkeypatch):
    def failing(db, policy, endpoint, deep=False, mirrors=None):
        raise EndpointError(f"{endpoint.describe()}: directory cannot be read", permanent=True)

    monkeypatch.setattr(verify, "index_authority", failing)
    report = verify_once(tmp_path, "state")
    assert report["exit_code"] == 3 and "directory cannot be read" in report["error"]


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
