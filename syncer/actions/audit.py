"""audit-offsite: could the keys on a stolen board delete every snapshot?"""

import logging

from syncer.actions.common import for_each_dataset
from syncer.actions.offsite import require_offsite
from syncer.errors import EXIT_FINDINGS, EXIT_OK
from syncer.policy.credentials import read_credentials
from syncer.restic.argv import parse_s3_repository

log = logging.getLogger("syncer.audit")


def assess(protection):
    """Given read_bucket_protection()'s answer, return the warnings. Only object lock
    with a default retention stops keys that may write from destroying history;
    versioning alone does not stop keys that may also delete versions."""
    warnings = []
    lock = protection["object_lock"]
    locked = lock["enabled"] and lock["mode"] in ("COMPLIANCE", "GOVERNANCE") and (lock["days"] or lock["years"])
    if not locked:
        if protection["versioning"] != "Enabled":
            warnings.append("no versioning and no object lock: the board's keys can delete every snapshot")
        else:
            warnings.append("versioning without object lock: keys allowed to delete object versions can still "
                            "erase every snapshot")
    elif lock["mode"] == "GOVERNANCE":
        warnings.append("object lock in GOVERNANCE mode: keys with s3:BypassGovernanceRetention can delete "
                        "locked versions")
    for rule in protection["lifecycle"]:
        if rule["status"] == "Enabled" and rule["expiration_days"]:
            warnings.append(f"lifecycle rule {rule['id'] or '(unnamed)'} expires objects after "
                            f"{rule['expiration_days']} days: restic's pack files would disappear")
    return warnings


def run_audit(policies, db=None):
    """Audit each dataset's offsite bucket and its copies' (under "copies"). Return
    the report: exit 1 when any warning is raised."""
    from syncer.endpoints.offsite_s3 import read_bucket_protection

    def audit(name, repository, env_file):
        parsed = parse_s3_repository(repository)
        if parsed is None:
            return {"name": name, "repository": repository, "audited": False,
                    "reason": "not an s3: repository; nothing to audit", "warnings": [], "exit_code": EXIT_OK}
        endpoint_url, bucket, prefix = parsed
        credentials = read_credentials(env_file) if env_file else {}
        protection = read_bucket_protection(endpoint_url, bucket, credentials, env_file)
        warnings = assess(protection)
        for warning in warnings:
            log.warning("%s: bucket %s: %s", name, bucket, warning)
        return {"name": name, "repository": repository, "audited": True, "bucket": bucket,
                "prefix": prefix, **protection, "warnings": warnings,
                "exit_code": EXIT_FINDINGS if warnings else EXIT_OK}

    def work(policy):
        require_offsite(policy)
        row = audit(policy.name, policy.offsite.repository, policy.offsite.env_file)
        # each copy is audited the same way: a copy the board's keys can erase protects little
        copies = [audit(policy.name, copy.repository, copy.env_file) for copy in policy.offsite.copies]
        for copy in copies:
            del copy["name"]
        row["copies"] = copies
        row["exit_code"] = max([row["exit_code"]] + [copy["exit_code"] for copy in copies])
        return row

    return for_each_dataset(policies, work)
