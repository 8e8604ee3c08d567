"""findings: every finding of each dataset's last verify, read from the state database.

A verify's report lists at most ITEMS_KEPT items, so that a million differences do not
take a million items of memory; the findings table holds them all, and this lists them,
streamed, however many there are. It reads nothing but the state database.
"""

from syncer.actions.verify import FINDINGS
from syncer.errors import EXIT_FINDINGS, EXIT_OK
from syncer.index.runs import last_success


def run_findings(policies, db, statuses=()):
    """Return the report: per dataset its name, when its last completed verify finished
    (None if none did), the count of each status found, and "items", an iterator of
    {"path", "status", "reason"?} in path order (only `statuses`, if given). Exit 1 for
    a dataset with findings among those listed (unverifiable items are listed but are
    not findings)."""
    return {"datasets": [dataset_findings(policy, db, tuple(statuses)) for policy in policies]}


def dataset_findings(policy, db, statuses):
    verified = last_success(db, policy.name, "verify")
    counts = db.count_findings(policy.name)
    listed = {status: count for status, count in counts.items() if not statuses or status in statuses}
    items = ({"path": path, "status": status, **({"reason": reason} if reason else {})}
             for path, status, reason in db.iterate_findings(policy.name, statuses))
    return {"name": policy.name, "verified_at": verified and verified["finished_at"], "counts": listed,
            "items": items, "exit_code": EXIT_FINDINGS if any(listed.get(status) for status in FINDINGS) else EXIT_OK}
