"""status: one row per dataset from the state database; reads nothing else.

Each row: local files and bytes, the last run of every action (when, result, how
long), the newest snapshot's age (the recovery point) and each copy's, open findings, the share of
bytes verified by checksum, the projected restore time from the last drill, and which
scheduled actions are stale (no completed run within twice their schedule interval).
A row's exit code is 1 with open findings, a stale action, or an action whose last run
failed or had findings (a failed push or drill): 0 means healthy to a monitor.
"""

import time

from syncer.actions.common import RESTIC_MEMORY
from syncer.actions.snapshots import read_data_progress
from syncer.errors import EXIT_FINDINGS, EXIT_OK
from syncer.index import integrity
from syncer.index.db import LOCAL
from syncer.index.runs import last_success
from syncer.policy.settings import cron_interval

ACTIONS = ("pull", "verify", "push", "check", "drill", "scrub")
RESTIC_ACTIONS = ("push", "check", "drill", "restore")
STALE_FACTOR = 2
COPY_RUNS_READ = 50  # pushes looked back through for each copy's last success


def run_status(policies, db, now=None):
    """Return the report, one row per dataset."""
    now = now or time.time()
    return {"datasets": [dataset_status(policy, db, now) for policy in policies]}


def dataset_status(policy, db, now):
    files, size, verified_bytes = db.totals(policy.name, LOCAL)
    findings = {status: count for status, count in db.count_findings(policy.name).items()
                if status != "unverifiable"}
    corrupt = len(integrity.open_corruptions(db, policy.name))
    if corrupt:
        findings["corrupt"] = corrupt
    restic_memory = restic_peak(db, policy.name)
    if restic_memory and restic_memory["over_half_of_memory"]:
        findings["restic_memory"] = 1
    last = {}
    for action in ACTIONS:
        run = db.last_run(policy.name, action)
        if not run:
            continue
        success = run if run["result"] in ("ok", "findings") else last_success(db, policy.name, action)
        last[action] = {"at": run["finished_at"], "age_seconds": round(now - run["finished_at"]),
                        "result": run["result"], "seconds": round(run["finished_at"] - run["started_at"], 3),
                        "last_success_at": success and success["finished_at"]}
        if run["result"] not in ("ok", "findings") and run["summary"].get("error"):
            last[action]["error"] = run["summary"]["error"]
    schedule = dict(policy.schedule)
    stale = []
    for action, expression in schedule.items():
        interval = cron_interval(expression, now)
        success_at = last.get(action, {}).get("last_success_at")
        if interval and (success_at is None or now - success_at > STALE_FACTOR * interval):
            stale.append(action)
    snapshot = newest_snapshot(db, policy.name, now)
    drill = last_drill(db, policy.name, size)
    unhealthy = findings or stale or any(run["result"] in ("failed", "findings") for run in last.values())
    return {"name": policy.name, "path": str(policy.path), "files": files, "bytes": size,
            "checksum_coverage": round(verified_bytes / size, 4) if size else None,
            "scrub_confirmed_30d": rounded(integrity.confirmed_share_since(db, policy.name, now - 30 * 86400)),
            "findings": findings, "last": last, "schedule": schedule, "stale": stale,
            "unavailable": [],  # every scheduled action ships now; the key stays for --json readers
            "newest_snapshot": snapshot,
            "rpo_seconds": snapshot and snapshot["age_seconds"], "drill": drill,
            "projected_restore_seconds": drill and drill.get("projected_restore_seconds"),
            "copies": copies_status(policy, db, now),
            "read_data": read_data_progress(db, policy),  # offsite.read_data's cycle, or None
            "restic_peak_rss": restic_memory,
            "exit_code": EXIT_FINDINGS if unhealthy else EXIT_OK}


def restic_peak(db, dataset):
    """Return restic's largest peak memory over the last push, check, drill and restore,
    {"bytes", "action", "over_half_of_memory"}, or None when none recorded it."""
    peaks = []
    for action in RESTIC_ACTIONS:
        run = db.last_run(dataset, action)
        if run and run["summary"].get("restic_peak_rss_bytes"):
            peaks.append((run["summary"]["restic_peak_rss_bytes"], action))
    if not peaks:
        return None
    peak, action = max(peaks)
    warning = db.last_run(dataset, RESTIC_MEMORY)
    return {"bytes": peak, "action": action, "over_half_of_memory": bool(warning and warning["result"] == "findings")}


def rounded(share):
    return None if share is None else round(share, 4)


def newest_snapshot(db, dataset, now):
    """Return {"at", "age_seconds", "id"} of the newest snapshot syncer made (its last
    completed push), or None."""
    push = last_success(db, dataset, "push")
    if not push:
        return None
    summary = push["summary"]
    snapshot = summary.get("snapshot")
    snapshot_id = summary.get("snapshot_id") or (snapshot if isinstance(snapshot, str) else None)
    at = summary.get("snapshot_time") if isinstance(summary.get("snapshot_time"), (int, float)) else None
    at = at or push["finished_at"]
    return {"at": at, "age_seconds": round(now - at), "id": snapshot_id}


def copies_status(policy, db, now):
    """Return, per repository of offsite.copies, the newest snapshot push copied there
    and checked: {"repository", "snapshot", "at", "age_seconds"} (its recovery point),
    at and age None when no copy succeeded yet; "last_error" when the last one failed."""
    from datetime import datetime

    from syncer.index.runs import recent_completed_runs
    from syncer.log import mask
    from syncer.restic.runner import mask_url

    copies = policy.offsite.copies if policy.offsite else []
    if not copies:
        return []
    runs = recent_completed_runs(db, policy.name, "push", COPY_RUNS_READ)
    rows = []
    for copy in copies:
        address = mask(mask_url(copy.repository))
        attempts = [row for run in runs for row in run["summary"].get("copies") or () if row["repository"] == address]
        done = next((row for row in attempts if row.get("ok") and row.get("snapshot_time")), None)
        at = done and datetime.fromisoformat(done["snapshot_time"][:26].rstrip("Z") + "+00:00").timestamp()
        row = {"repository": address, "snapshot": done and done["snapshot"], "at": at,
               "age_seconds": round(now - at) if at else None}
        if attempts and not attempts[0].get("ok"):
            row["last_error"] = attempts[0].get("error")
        rows.append(row)
    return rows


def last_drill(db, dataset, local_bytes):
    """Return what the last completed drill measured, or None: its time, result,
    throughput (MiB/s) and projected full-restore time of the dataset."""
    drill = last_success(db, dataset, "drill")
    if not drill:
        return None
    summary = drill["summary"]
    throughput = summary.get("throughput_mib_s")
    projected = summary.get("projected_restore_seconds")
    if projected is None and throughput and local_bytes:
        projected = round(local_bytes / (throughput * 2**20), 1)
    return {"at": drill["finished_at"], "result": drill["result"], "passed": summary.get("passed"),
            "throughput_mib_s": throughput, "projected_restore_seconds": projected}


STATES = ("ok", "findings", "stale", "failing")


def dataset_state(row):
    """Return the one word for a status row, worst first: failing (an action's last run
    failed or was interrupted), findings (open findings, or a run that had some), stale
    (a scheduled action has not completed within twice its interval), else ok."""
    results = {run["result"] for run in row["last"].values()}
    if results & {"failed", "interrupted"}:
        return "failing"
    if row["findings"] or "findings" in results:
        return "findings"
    if row["stale"]:
        return "stale"
    return "ok"
