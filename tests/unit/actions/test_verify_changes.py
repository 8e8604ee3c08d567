"""verify by changes: k changes on either side give the findings a full verify gives,
judging O(k) rows; a finding carried over stays reported; nothing is carried over from
a verify that failed."""

import shutil

from syncer.actions.verify import run_verify
from syncer.index.db import StateDB
from syncer.index.dirty import refresh_paths
from syncer.index.incremental import apply_listing, covering_paths, diff_listing
from syncer.policy import load_policies
from tests.support import write_policy, write_tree

UNTOUCHED = {f"keep/{n:02d}.txt": f"kept {n}" for n in range(40)}
TREE = {"a.txt": "a", "b.txt": "b", "c.txt": "c", "old.txt": "old", "fixed.txt": "fixed",
        "d/1.txt": "one", "d/2.txt": "two", **UNTOUCHED}


def dataset(tmp_path):
    write_tree(tmp_path / "data", TREE)
    write_tree(tmp_path / "authority", TREE)
    write_policy(tmp_path / "p", "docs", {"path": str(tmp_path / "data"),
                                          "authority": {"type": "local", "path": str(tmp_path / "authority")}})
    [policy] = load_policies(tmp_path / "p")
    return policy, StateDB(tmp_path / "state")


def findings(db):
    return db.execute("SELECT path, status, reason FROM findings WHERE dataset='docs' ORDER BY path").fetchall()


def test_changes_on_both_sides_give_the_findings_of_a_full_verify_judging_only_them(tmp_path):
    policy, db = dataset(tmp_path)
    data, authority = tmp_path / "data", tmp_path / "authority"
    try:
        (data / "old.txt").write_text("OLD")  # a finding before the watch: carried over untouched
        (data / "fixed.txt").write_text("FIXED")
        [first] = run_verify([policy], db)["datasets"]
        assert first["counts"]["changed"] == 2 and first["local"]["examined"] == "tree"

        (data / "a.txt").write_text("A")  # edit
        (data / "b.txt").unlink()  # delete
        (data / "new.txt").write_text("new")  # add
        (data / "d").rename(data / "e")  # rename of a directory
        (data / "fixed.txt").write_text("fixed")  # a finding that goes away
        (authority / "c.txt").write_text("C")  # authority-side edit
        (authority / "upstream.txt").write_text("up")  # authority-side add
        (data / "keep/00.txt").unlink()
        # a push after the watch's quiet spell re-indexed this one already: its row is gone
        refresh_paths(db, "docs", data, ["keep/00.txt"])
        local_changes = ["a.txt", "b.txt", "new.txt", "d", "e", "fixed.txt", "keep/00.txt"]
        [changed] = run_verify([policy], db, changed={"docs": local_changes},
                               changed_authority={"docs": ["c.txt", "upstream.txt"]})["datasets"]
        carried = findings(db)

        assert changed["local"]["examined"] == "changes"
        # a, b, new, d/1, d/2, e/1, e/2, fixed, c, upstream, keep/00: not the 39 untouched files
        assert changed["compared"] == 11
        assert changed["local"]["files"] == 5  # a, new, e/1, e/2, fixed: the only files stat'ed here

        [full] = run_verify([policy], db)["datasets"]  # everything compared afresh
        assert full["local"]["examined"] == "tree" and "compared" not in full
        assert changed["counts"] == full["counts"]
        assert changed["items"] == full["items"]
        assert carried == findings(db)
        assert {item["path"]: item["status"] for item in full["items"]} == {
            "a.txt": "changed", "b.txt": "missing_local", "c.txt": "changed", "d/1.txt": "missing_local",
            "d/2.txt": "missing_local", "e/1.txt": "extra_local", "e/2.txt": "extra_local",
            "new.txt": "extra_local", "old.txt": "changed", "upstream.txt": "missing_local",
            "keep/00.txt": "missing_local"}
        assert full["counts"]["ok"] == len(UNTOUCHED) - 1 + 1  # less keep/00, and fixed.txt
    finally:
        db.close()


def test_a_carried_over_finding_stays_reported_with_no_change_at_all(tmp_path):
    policy, db = dataset(tmp_path)
    try:
        (tmp_path / "data" / "old.txt").write_text("OLD")
        run_verify([policy], db)
        for _ in range(2):
            [result] = run_verify([policy], db, changed={"docs": []}, changed_authority={"docs": []})["datasets"]
            assert result["compared"] == 0 and result["exit_code"] == 1
            assert [(item["path"], item["status"]) for item in result["items"]] == [("old.txt", "changed")]
            assert result["counts"]["changed"] == 1 and result["counts"]["ok"] == len(TREE) - 1
    finally:
        db.close()


def test_nothing_is_carried_over_from_a_verify_that_failed_or_a_local_authority_not_watched(tmp_path):
    policy, db = dataset(tmp_path)
    try:
        run_verify([policy], db)
        shutil.rmtree(tmp_path / "authority")
        [failed] = run_verify([policy], db, changed={"docs": []}, changed_authority={"docs": []})["datasets"]
        assert failed["exit_code"] == 3
        write_tree(tmp_path / "authority", TREE | {"a.txt": "A"})  # changed while the verify failed
        [after] = run_verify([policy], db, changed={"docs": []}, changed_authority={"docs": []})["datasets"]
        assert "compared" not in after and after["counts"]["changed"] == 1  # compared in full: a.txt found
        [unwatched] = run_verify([policy], db, changed={"docs": []})["datasets"]  # authority changes unknown
        assert "compared" not in unwatched and unwatched["local"]["examined"] == "changes"
    finally:
        db.close()


def test_so_many_changes_that_comparing_everything_costs_less_compare_everything(tmp_path, monkeypatch):
    from syncer.actions import verify_changes

    policy, db = dataset(tmp_path)
    monkeypatch.setattr(verify_changes, "ALWAYS_BY_CHANGES", 2)
    monkeypatch.setattr(verify_changes, "PATHS_PER_CHANGE", 16)  # 47 paths: up to 2 changes by changes
    try:
        run_verify([policy], db)
        (tmp_path / "data" / "a.txt").write_text("A")
        [few] = run_verify([policy], db, changed={"docs": ["a.txt"]}, changed_authority={"docs": ["b.txt"]})["datasets"]
        assert few["compared"] == 2 and few["counts"]["changed"] == 1
        [many] = run_verify([policy], db, changed={"docs": ["a.txt", "b.txt"]},
                            changed_authority={"docs": ["c.txt"]})["datasets"]
        assert "compared" not in many and many["counts"]["changed"] == 1  # every row compared
        assert many["counts"]["ok"] == len(TREE) - 1
    finally:
        db.close()


def test_covering_paths_keeps_each_path_once_below_its_changed_directory():
    assert covering_paths(["a/b", "a.txt", "a", "", "a/b/c", "b/c", "b/cd", "b/c/d"]) == [
        "a", "a.txt", "b/c", "b/cd"]


class Entry:
    def __init__(self, path, size, checksum, algorithm="md5", mtime=None, note=None):
        self.path, self.size, self.checksum, self.algorithm, self.mtime, self.note = \
            path, size, checksum, algorithm, mtime, note


def test_a_listing_diffed_in_sql_leaves_the_rows_a_replaced_listing_would(tmp_path):
    db = StateDB(tmp_path / "state")
    try:
        before = [Entry("same", 1, "aa"), Entry("edited", 2, "bb"), Entry("gone", 3, "cc"),
                  Entry("touched", 4, "dd", mtime=1.0), Entry("noted", 5, "ee")]
        after = [Entry("same", 1, "aa"), Entry("edited", 2, "b2"), Entry("touched", 4, "dd", mtime=2.0),
                 Entry("noted", 5, "ee", note="a note"), Entry("new", 6, "ff")]
        for name in ("diffed", "replaced"):
            db.replace_listing(name, before)
        db.replace_listing("replaced", after)
        changed = diff_listing(db, "diffed", iter(after))
        assert sorted(changed) == ["edited", "gone", "new", "noted", "touched"]
        apply_listing(db, "diffed", changed)
        rows = "SELECT path, parent, size, mtime_ns, md5, sha256, etag, note, dirty FROM files WHERE dataset=? " \
               "AND side='authority' ORDER BY path"
        assert db.execute(rows, ("diffed",)).fetchall() == db.execute(rows, ("replaced",)).fetchall()
        assert diff_listing(db, "diffed", iter(after)) == []
    finally:
        db.close()


def test_a_path_counted_twice_by_the_last_verify_is_carried_over_whole(tmp_path):
    """A symlink here where the authority has a file is both missing_local and
    unverifiable; the findings table keeps both statuses of the path, so a verify by
    changes carries over the missing_local with the rest, and exits 1."""
    policy, db = dataset(tmp_path)
    data = tmp_path / "data"
    try:
        (data / "a.txt").unlink()
        (data / "a.txt").symlink_to(data / "b.txt")
        [first] = run_verify([policy], db)["datasets"]
        assert (first["counts"]["missing_local"], first["counts"]["unverifiable"]) == (1, 1)
        (data / "c.txt").write_text("C")
        [then] = run_verify([policy], db, changed={"docs": ["c.txt"]},
                            changed_authority={"docs": []})["datasets"]
        assert then["compared"] == 1  # only the changed path
        assert (then["counts"]["missing_local"], then["counts"]["unverifiable"], then["counts"]["changed"]) == (1, 1, 1)
        assert then["exit_code"] == 1
    finally:
        db.close()
