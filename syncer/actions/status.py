"""status: one row per dataset from the state database; reads nothing else."""

import time

from syncer.errors import EXIT_FINDINGS, EXIT_OK
from syncer.index.db import LOCAL

ACTIONS = ("pull", "verify", "push", "check", "drill")


def run_status(policies, db, now=None):
    """Return (report, exit_code); exit 1 when any dataset has open findings."""
    now = now or time.time()
    rows, exit_code = [], EXIT_OK
    for policy in policies:
        files, size, verified_bytes = db.totals(policy.name, LOCAL)
        findings = {status: count for status, count in db.count_findings(policy.name).items()
                    if status != "unverifiable"}
        last = {}
        for action in ACTIONS:
            run = db.last_run(policy.name, action)
            if run:
                last[action] = {"at": run["finished_at"], "age_seconds": round(now - run["finished_at"]),
                                "result": run["result"]}
        rows.append({"name": policy.name, "path": str(policy.path), "files": files, "bytes": size,
                     "checksum_coverage": round(verified_bytes / size, 4) if size else None,
                     "findings": findings, "last": last})
        if findings:
            exit_code = EXIT_FINDINGS
    return {"datasets": rows}, exit_code
