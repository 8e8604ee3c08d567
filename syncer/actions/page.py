"""page: what the status page shows, gathered from the state database; reads nothing else.

The overview is the status report (syncer.actions.status) with each dataset's state
word and the last and next run of its actions. The history comes from the run
records of the last HISTORY_DAYS days: verify findings, push bytes added and
duration, drill throughput and projected restore time, checksum and scrub coverage.
A dataset that runs often (a year of hourly runs) is summed up per UTC day, so the
page stays the same size however busy the schedule: MAX_POINTS runs at most are shown
one by one. syncer.notify.page turns the result into HTML.
"""

import json
import time
from datetime import UTC, datetime

from syncer import __version__
from syncer.actions.status import ACTIONS, dataset_state, run_status
from syncer.actions.verify import FINDINGS
from syncer.index import integrity
from syncer.policy.settings import cron_trigger

HISTORY_DAYS = 30
MAX_POINTS = 60
FAILURES_SHOWN = 10
FINDINGS_SHOWN = 50
# What the charts read from each action's run summaries.
SUMMARY_FIELDS = {
    "verify": (*(f"counts.{status}" for status in FINDINGS), "checksum_coverage"),
    "push": ("bytes_added", "duration", "seconds"),
    "drill": ("throughput_mib_s", "projected_restore_seconds"),
    "scrub": ("confirmed_share_30d",),
}


def build_page(policies, db, now=None):
    """Return the page's data: {"written_at", "version", "history_days", "datasets":
    [{"status", "state", "runs", "history"}], "failures", "findings"}; the failures and
    findings are capped, with the count of the rest in "more"."""
    now = now or time.time()
    report = run_status(policies, db, now)
    names = [policy.name for policy in policies]
    since = now - HISTORY_DAYS * 86400
    datasets = [{"status": row, "state": dataset_state(row), "runs": scheduled_runs(row, now),
                 "history": dataset_history(db, row["name"], since)} for row in report["datasets"]]
    return {"written_at": now, "version": __version__, "history_days": HISTORY_DAYS, "datasets": datasets,
            "failures": recent_failures(db, names, since), "findings": open_findings(db, names)}


def scheduled_runs(row, now):
    """Return [{"action", "schedule", "last_at", "result", "next_at"}] for every action
    that ran or is scheduled; next_at is the schedule's next time (before the daemon's
    jitter), None when unscheduled."""
    runs = []
    for action in ACTIONS:
        last, expression = row["last"].get(action), row["schedule"].get(action)
        if not last and not expression:
            continue
        runs.append({"action": action, "schedule": expression, "last_at": last and last["at"],
                     "result": last and last["result"], "next_at": next_time(expression, now)})
    return runs


def next_time(expression, now):
    if not expression:
        return None
    moment = cron_trigger(expression).get_next_fire_time(None, datetime.fromtimestamp(now, UTC).astimezone())
    return moment and moment.timestamp()


def dataset_history(db, dataset, since):
    """Return the charts' series of one dataset: {"verify": [{"at", "findings"}], "push":
    [{"at", "bytes_added", "seconds"}], "drill": [{"at", "throughput_mib_s",
    "projected_restore_seconds"}], "coverage": [{"at", "checksum", "scrub"}],
    "per_day": {series: bool}}, oldest first, from the completed runs since `since`."""
    points = {"verify": [], "push": [], "drill": [], "coverage": []}
    for action, fields in SUMMARY_FIELDS.items():
        # One query per action, each only the keys it charts, parsed by SQLite: the
        # index gives the rows in order, and a year of hourly runs stays cheap.
        extracts = ", ".join(f"json_extract(summary, '$.{key}')" for key in fields)
        cursor = db.execute(f"SELECT finished_at, {extracts} FROM runs WHERE dataset=? AND action=? AND started_at>=? "
                            "AND result IN ('ok', 'findings') ORDER BY started_at", (dataset, action, since))
        for at, *values in cursor:
            summary = dict(zip(fields, values))
            if action == "verify":
                points["verify"].append({"at": at, "findings": sum(summary[f"counts.{status}"] or 0
                                                                   for status in FINDINGS)})
                if summary["checksum_coverage"] is not None:
                    points["coverage"].append({"at": at, "checksum": summary["checksum_coverage"], "scrub": None})
            elif action == "push":
                seconds = summary["duration"] if summary["duration"] is not None else summary["seconds"]
                points["push"].append({"at": at, "bytes_added": summary["bytes_added"], "seconds": seconds})
            elif action == "drill":
                points["drill"].append({"at": at, **summary})
            elif summary["confirmed_share_30d"] is not None:
                points["coverage"].append({"at": at, "checksum": None, "scrub": summary["confirmed_share_30d"]})
    points["coverage"].sort(key=lambda point: point["at"])
    history = {"per_day": {}}
    for series, values in points.items():
        per_day = len(values) > MAX_POINTS
        history[series] = by_day(values, summed=("bytes_added", "seconds") if series == "push" else ()) \
            if per_day else values
        history["per_day"][series] = per_day
    return history


def by_day(points, summed=()):
    """Return one point per UTC day: the keys in `summed` added up over the day, the
    others the day's last known value (a level such as a coverage or a throughput)."""
    days = {}
    for point in points:
        day = int(point["at"] // 86400)
        merged = days.setdefault(day, {key: None for key in point})
        merged["at"] = point["at"]
        for key, value in point.items():
            if key == "at" or value is None:
                continue
            merged[key] = (merged[key] or 0) + value if key in summed else value
    return list(days.values())


def recent_failures(db, names, since, limit=FAILURES_SHOWN):
    """Return {"runs": [{"dataset", "action", "at", "result", "error"}], "more": n}: the
    failed and interrupted runs since `since`, newest first."""
    if not names:
        return {"runs": [], "more": 0}
    placeholders = ", ".join("?" * len(names))
    # `+dataset`: not by the dataset index (every run of the dataset) but by runs_failed (the failures alone)
    where = (f"FROM runs WHERE +dataset IN ({placeholders}) AND result IN ('failed', 'interrupted') "
             "AND started_at>=?")
    total = db.execute(f"SELECT COUNT(*) {where}", (*names, since)).fetchone()[0]
    rows = db.execute(f"SELECT dataset, action, finished_at, result, summary {where} ORDER BY started_at DESC "
                      "LIMIT ?", (*names, since, limit)).fetchall()
    runs = [{"dataset": dataset, "action": action, "at": at, "result": result,
             "error": (json.loads(text) if text else {}).get("error")} for dataset, action, at, result, text in rows]
    return {"runs": runs, "more": total - len(runs)}


def open_findings(db, names, limit=FINDINGS_SHOWN):
    """Return {"items": [{"dataset", "path", "status", "reason", "found_at"}], "more": n}:
    the open findings of the last verify and the open corruptions scrub found, by
    dataset and path, `limit` at most. Unverifiable items are not findings (as in status)."""
    items, total = [], 0
    for name in names:
        where = "FROM findings WHERE dataset=? AND status != 'unverifiable'"
        total += db.execute(f"SELECT COUNT(*) {where}", (name,)).fetchone()[0]
        items += [{"dataset": name, "path": path, "status": status, "reason": reason, "found_at": found_at}
                  for path, status, reason, found_at in db.execute(
                      f"SELECT path, status, reason, found_at {where} ORDER BY path LIMIT ?",
                      (name, max(0, limit - len(items))))]
        corruptions = integrity.open_corruptions(db, name)
        total += len(corruptions)
        items += [{"dataset": name, "path": corruption["path"], "status": "corrupt",
                   "reason": "its content changed but its size and mtime did not", "found_at": corruption["found_at"]}
                  for corruption in corruptions[:max(0, limit - len(items))]]
    return {"items": items, "more": total - len(items)}
