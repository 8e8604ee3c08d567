"""The status page's history: one point per run, or per UTC day when the runs are many."""

import json

from syncer.actions.page import MAX_POINTS, dataset_history, recent_failures
from syncer.index.db import StateDB
from syncer.notify.page import render_page

DAY = 86400
START = 1_800_000_000 - 1_800_000_000 % DAY  # midnight UTC


def record(db, action, at, result="ok", **summary):
    db.execute("INSERT INTO runs (dataset, action, started_at, finished_at, result, exit_code, summary) "
               "VALUES ('photos', ?, ?, ?, ?, 0, ?)", (action, at, at + 10, result, json.dumps(summary)))


def test_few_runs_are_shown_one_by_one(tmp_path):
    db = StateDB(tmp_path)
    record(db, "verify", START, counts={"ok": 9, "changed": 1, "missing_local": 2, "unverifiable": 4},
           checksum_coverage=0.5)
    record(db, "push", START + 60, bytes_added=100, duration=7.5)
    record(db, "push", START + 120, result="failed", error="restic: repository is locked")
    record(db, "scrub", START + 180, confirmed_share_30d=0.25)
    history = dataset_history(db, "photos", START - 1)
    assert history["verify"] == [{"at": START + 10, "findings": 3}]  # unverifiable items are not findings
    assert history["push"] == [{"at": START + 70, "bytes_added": 100, "seconds": 7.5}]  # the failed push is not
    assert history["coverage"] == [{"at": START + 10, "checksum": 0.5, "scrub": None},
                                   {"at": START + 190, "checksum": None, "scrub": 0.25}]
    assert not any(history["per_day"].values())
    failures = recent_failures(db, ["photos"], START - 1)
    assert failures == {"runs": [{"dataset": "photos", "action": "push", "at": START + 130, "result": "failed",
                                  "error": "restic: repository is locked"}], "more": 0}


def test_many_runs_are_summed_up_per_day(tmp_path):
    db = StateDB(tmp_path)
    hours = 4 * 24
    assert hours > MAX_POINTS
    for hour in range(hours):
        record(db, "verify", START + hour * 3600, counts={"changed": hour})
        record(db, "push", START + hour * 3600 + 60, bytes_added=1000, duration=2.0)
    history = dataset_history(db, "photos", START - 1)
    assert history["per_day"] == {"verify": True, "push": True, "drill": False, "coverage": False}
    assert [point["findings"] for point in history["verify"]] == [23, 47, 71, 95]  # the day's last run
    assert [(point["bytes_added"], point["seconds"]) for point in history["push"]] == [(24000, 48.0)] * 4  # totals
    page = {"written_at": START + hours * 3600, "version": "0", "history_days": 30, "failures": {"runs": [], "more": 0},
            "findings": {"items": [], "more": 0},
            "datasets": [{"status": {"name": "photos", "path": "/srv/photos", "files": 0, "bytes": 0,
                                     "checksum_coverage": None, "findings": {}, "last": {}, "schedule": {}},
                          "state": "ok", "runs": [], "history": history}]}
    html = render_page(page)
    assert html.count("one row per UTC day") == 2 and html.count("one row per run") == 0
