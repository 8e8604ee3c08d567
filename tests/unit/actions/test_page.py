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


def test_every_string_from_a_policy_a_path_or_an_error_is_text(tmp_path):
    from tests.integration.page_support import read_page

    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    status = {"name": f"photos{evil}", "path": f"/srv/{evil}", "files": 1, "bytes": 10, "checksum_coverage": 1.0,
              "findings": {"changed": 1}, "schedule": {"verify": f"0 * * * * {evil}"},
              "last": {"push": {"at": START, "age_seconds": 5, "result": "failed", "seconds": 1.0,
                                "last_success_at": None, "error": f"restic: {evil}"}},
              "newest_snapshot": None, "drill": None, "projected_restore_seconds": None}
    page = {"written_at": START, "version": "0.1.0", "history_days": 30,
            "failures": {"runs": [{"dataset": status["name"], "action": "push", "at": START, "result": "failed",
                                   "error": f"restic: {evil}"}], "more": 3},
            "findings": {"items": [{"dataset": status["name"], "path": f"a/{evil}.jpg", "status": "changed",
                                    "reason": f"differs {evil}", "found_at": START}], "more": 7},
            "datasets": [{"status": status, "state": "failing", "history": {
                "verify": [{"at": START, "findings": 1}], "push": [], "drill": [], "coverage": [], "per_day": {}},
                "runs": [{"action": "verify", "schedule": status["schedule"]["verify"], "last_at": None,
                          "result": None, "next_at": START + 60}]}]}
    html = render_page(page)
    reader = read_page(html)
    assert set(reader.tags) <= {"html", "head", "meta", "title", "style", "body", "header", "h1", "p", "main",
                                "section", "h2", "table", "thead", "tr", "th", "tbody", "td", "div", "a", "br",
                                "span", "ul", "li", "b", "figure", "figcaption", "svg", "line", "rect",
                                "text", "caption", "footer"}
    assert [load for load in reader.loads if not load[2].startswith("#")] == []
    text = " ".join(reader.text)
    for shown in (status["name"], status["path"], f"restic: {evil}", f"a/{evil}.jpg", f"differs {evil}",
                  f"0 * * * * {evil}"):
        assert shown in text
    assert "and 3 earlier." in text and "and 7 more" in text
