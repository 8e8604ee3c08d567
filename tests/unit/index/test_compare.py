"""StateDB.compare leaves out the rows SQL shows equal: exactly those the verdict calls ok."""

import itertools
import os
import threading

import pytest

from syncer.index import db as db_module
from syncer.index.db import AUTHORITY, LOCAL, StateDB
from syncer.verdict import OK, Copy, judge

SIZES, DIGESTS, NOTES = (None, 5, 6), (None, "", "d1", "d2"), (None, "why")


def judged(row):
    """The verdict verify gives one compare row (judge_row without an endpoint)."""
    local_path, local_size, local_md5, local_sha256, local_note, authority_path, size, md5, sha256, etag, note = row
    found = local_path and Copy(local_size, {"md5": local_md5, "sha256": local_sha256}, None, local_note)
    expected = authority_path and Copy(size, {"md5": md5, "sha256": sha256, "etag": etag}, None, note)
    return judge(expected, found).status


@pytest.fixture(params=["one thread", "three threads"])
def compare_threads(request, monkeypatch):
    """Run a test with the comparison's pass in this thread, then shared out to three."""
    if request.param == "one thread":
        yield
        return
    monkeypatch.setattr(db_module, "PARALLEL_COMPARE_ROWS", 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    calls, shared_out = [], StateDB.rows_in_threads
    monkeypatch.setattr(StateDB, "rows_in_threads", lambda *arguments: calls.append(arguments[-1])
                        or shared_out(*arguments))
    yield
    assert calls and set(calls) == {3}


def test_the_rows_left_out_as_equal_are_exactly_those_judged_ok(tmp_path, compare_threads):
    db = StateDB(tmp_path / "state")
    local_rows, authority_rows = [], []
    sides = list(itertools.product(SIZES, DIGESTS, DIGESTS, NOTES))
    for number, (mine, theirs) in enumerate(itertools.product(sides, sides)):
        local_rows.append(dict(zip(("size", "md5", "sha256", "note"), mine), path=f"both/{number}"))
        authority_rows.append(dict(zip(("size", "md5", "sha256", "note"), theirs), path=f"both/{number}",
                                   etag="e-2" if number % 7 == 0 else None))
    local_rows += [{"path": "only-here", "size": 5, "sha256": "d1"}]
    authority_rows += [{"path": "only-there", "size": 5, "sha256": "d1"}]
    with db.transaction():
        db.upsert_files("data", LOCAL, local_rows)
        db.upsert_files("data", AUTHORITY, authority_rows)

    every = {row[0] or row[5]: row for row in db.compare("data")}
    equal = []
    differing = {row[0] or row[5]: row for row in db.compare("data", equal)}
    judged_ok = {path for path, row in every.items() if judged(row) == OK}
    assert len(every) == len(sides) ** 2 + 2
    assert 0 < len(judged_ok) < len(every)
    assert set(differing) == set(every) - judged_ok
    assert equal == [len(judged_ok)]
    assert all(differing[path] == every[path] for path in differing)
    db.close()


def test_a_dataset_with_every_row_equal_still_finds_what_is_missing_here(tmp_path, compare_threads):
    db = StateDB(tmp_path / "state")
    with db.transaction():
        db.upsert_files("data", LOCAL, [{"path": "a", "size": 1, "sha256": "d1"}])
        db.upsert_files("data", AUTHORITY, [{"path": "a", "size": 1, "sha256": "d1"},
                                            {"path": "b", "size": 1, "sha256": "d2"}])
    equal = []
    assert [row[5] for row in db.compare("data", equal)] == ["b"] and equal == [1]
    db.close()


def test_a_comparison_left_half_way_leaves_no_thread_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(db_module, "PARALLEL_COMPARE_ROWS", 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    db = StateDB(tmp_path / "state")
    rows = [{"path": f"d/{number:05d}", "size": 1, "sha256": "here"} for number in range(20_000)]
    with db.transaction():
        db.upsert_files("data", LOCAL, rows)
        db.upsert_files("data", AUTHORITY, [dict(row, sha256="there") for row in rows])
    compared = db.compare("data", [])
    assert len([next(compared) for _ in range(10)]) == 10
    compared.close()
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("compare-")]
    db.close()
