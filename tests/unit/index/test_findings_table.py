"""The findings table: every status of a path is kept, and a table of an earlier
version (keyed by dataset and path) is rebuilt with its rows when the database opens."""

import sqlite3

from syncer.index.db import StateDB, findings_key

OLD_FINDINGS = """CREATE TABLE findings (dataset TEXT NOT NULL, path TEXT NOT NULL, status TEXT NOT NULL,
    reason TEXT, found_at REAL NOT NULL, PRIMARY KEY (dataset, path)) WITHOUT ROWID"""


def test_a_path_found_with_two_statuses_keeps_both(tmp_path):
    db = StateDB(tmp_path / "state")
    try:
        db.replace_findings("docs", [{"path": "a", "status": "missing_local"},
                                     {"path": "a", "status": "unverifiable", "reason": "local: symlink, not compared"},
                                     {"path": "b", "status": "changed", "reason": "first"},
                                     {"path": "b", "status": "changed", "reason": "second"}])
        assert db.count_findings("docs") == {"missing_local": 1, "unverifiable": 1, "changed": 1}
        assert list(db.iterate_findings("docs")) == [("a", "missing_local", None),
                                                     ("a", "unverifiable", "local: symlink, not compared"),
                                                     ("b", "changed", "second")]
    finally:
        db.close()


def test_a_findings_table_of_an_earlier_version_is_rebuilt_with_its_rows(tmp_path):
    (tmp_path / "state").mkdir()
    old = sqlite3.connect(tmp_path / "state/state.db")
    old.execute(OLD_FINDINGS)
    old.executemany("INSERT INTO findings VALUES (?, ?, ?, ?, ?)",
                    [("docs", "a", "unverifiable", "local: symlink, not compared", 1.0), ("docs", "b", "changed",
                                                                                          None, 1.0)])
    old.commit()
    old.close()
    db = StateDB(tmp_path / "state")
    try:
        assert findings_key(db.connection) == ["dataset", "path", "status"]
        assert db.count_findings("docs") == {"unverifiable": 1, "changed": 1}
        db.replace_findings("docs", [{"path": "a", "status": "missing_local"}, {"path": "a", "status": "unverifiable"}])
        assert db.count_findings("docs") == {"missing_local": 1, "unverifiable": 1}
    finally:
        db.close()
    again = StateDB(tmp_path / "state")  # opened again: nothing left to rebuild
    try:
        assert again.count_findings("docs") == {"missing_local": 1, "unverifiable": 1}
    finally:
        again.close()
