"""Run-history queries the always-on parts need: what finished since a moment, what came
before it, and closing the records of steps a stopping daemon abandoned."""

import json
import time

from syncer.process import process_alive

RUN_COLUMNS = ("id", "dataset", "action", "started_at", "finished_at", "result", "exit_code", "summary")


def as_run(row):
    run = dict(zip(RUN_COLUMNS, row))
    run["summary"] = json.loads(run["summary"]) if run.get("summary") else {}
    return run


def runs_since(db, dataset, since):
    """Return the finished runs of `dataset` that started at or after `since`, oldest first."""
    cursor = db.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE dataset=? AND started_at>=? "
                        "AND finished_at IS NOT NULL ORDER BY started_at", (dataset, since))
    return [as_run(row) for row in cursor]


def run_before(db, dataset, action, before):
    """Return the newest finished run of `dataset`/`action` started before `before`, or None."""
    row = db.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE dataset=? AND action=? AND started_at<? "
                     "AND finished_at IS NOT NULL ORDER BY started_at DESC LIMIT 1",
                     (dataset, action, before)).fetchone()
    return as_run(row) if row else None


def last_started(db, dataset, action):
    """Return when `dataset`/`action` last started (finished or not), or None: the
    daemon's equivalent of a systemd timer's Persistent= stamp."""
    row = db.execute("SELECT MAX(started_at) FROM runs WHERE dataset=? AND action=?", (dataset, action)).fetchone()
    return row[0] if row else None


def last_success(db, dataset, action):
    """Return the newest run of `dataset`/`action` that completed (ok or findings), or None."""
    row = db.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE dataset=? AND action=? "
                     "AND result IN ('ok', 'findings') ORDER BY started_at DESC LIMIT 1",
                     (dataset, action)).fetchone()
    return as_run(row) if row else None


def recent_completed_runs(db, dataset, action, count):
    """Return the last `count` runs of `dataset`/`action` that completed (ok or findings), newest first."""
    cursor = db.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE dataset=? AND action=? "
                        "AND result IN ('ok', 'findings') ORDER BY started_at DESC LIMIT ?", (dataset, action, count))
    return [as_run(row) for row in cursor]


def abandon_unfinished(db, dataset, action, since):
    """Close the records of `dataset`/`action` runs started since `since` that never
    finished, as 'interrupted' (the daemon stopped before they could end)."""
    db.execute("UPDATE runs SET finished_at=?, result='interrupted', summary=? WHERE dataset=? AND action=? "
               "AND started_at>=? AND finished_at IS NULL",
               (time.time(), json.dumps({"error": "abandoned: the daemon was stopped"}), dataset, action, since))


def killed_runs(db, dataset, actions):
    """Return the runs of `dataset` among `actions` that never finished and whose
    process is gone: killed (kill -9, a power cut) before they could record an end."""
    cursor = db.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE dataset=? AND finished_at IS NULL "
                        f"AND action IN ({', '.join('?' * len(actions))})", (dataset, *actions))
    runs = [as_run(row) for row in cursor]
    return [run for run in runs
            if isinstance(run["summary"].get("pid"), int) and not process_alive(run["summary"]["pid"])]


def close_killed(db, runs, note):
    """Close the records of `runs` (from killed_runs) as 'interrupted', saying `note`."""
    for run in runs:
        db.execute("UPDATE runs SET finished_at=?, result='interrupted', summary=? WHERE id=? AND finished_at IS NULL",
                   (time.time(), json.dumps({"error": note}), run["id"]))
