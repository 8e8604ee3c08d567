"""verify: compare the local copy with the authoritative copy, by checksum."""

import logging

from syncer.actions.common import for_each_dataset, recorded_run
from syncer.endpoints.base import NOTHING_TO_DOWNLOAD
from syncer.endpoints.factory import build_endpoint
from syncer.errors import EXIT_FINDINGS, EXIT_OK
from syncer.index.db import LOCAL
from syncer.index.hashing import s3_multipart_etag
from syncer.index.lock import dataset_lock
from syncer.index.scan import scan_tree

log = logging.getLogger("syncer.verify")
STATUSES = ("ok", "missing_local", "extra_local", "changed", "unverifiable")
FINDINGS = ("missing_local", "extra_local", "changed")
CORRUPT_REASON = "content changed under an unchanged size and mtime (bit rot?); `syncer repair` restores it"
# Part sizes that common S3 clients use for multipart uploads (aws cli and boto3 8 MiB,
# rclone 5 MiB, s3cmd 15 MiB, restic/minio 16 MiB, larger for big files).
COMMON_PART_SIZES_MIB = (8, 5, 16, 15, 10, 32, 64, 100, 128, 256, 512)


def run_verify(policies, db, deep=False, strict=False, progress=None):
    """Verify each policy's dataset. Return (report, exit_code).

    report = {"datasets": [{"name", "counts", "items", ...}]}; exit 1 when a dataset
    has missing, extra or changed items (or unverifiable ones with `strict`), 3 when
    a dataset could not be verified at all.
    """
    def work(policy):
        with dataset_lock(db.state_dir, policy.name):
            return verify_dataset(policy, db, deep, strict, progress)

    results, exit_code = for_each_dataset(policies, work, action="verify")
    return {"datasets": results}, exit_code


def verify_dataset(policy, db, deep=False, strict=False, progress=None):
    with recorded_run(db, policy.name, "verify") as outcome:
        endpoint = build_endpoint(policy)
        algorithm = endpoint.capabilities.checksum or "sha256"
        log.info("%s: indexing the local copy %s", policy.name, policy.path)
        if hasattr(endpoint, "index_local"):
            # GitLab: one bare mirror per project; the endpoint indexes the local side itself.
            stats = endpoint.index_local(db, policy.name, policy.path, deep=deep)
        else:
            stats = scan_tree(db, policy.name, LOCAL, policy.path, policy.exclude, (algorithm,), deep=deep,
                              progress=progress and (lambda files, hashed: progress(policy.name, files, hashed)))
        log.info("%s: %d files, %d hashed (%.1f MiB) in %.1fs", policy.name, stats.files, stats.hashed,
                 stats.hashed_bytes / 2**20, stats.seconds)
        log.info("%s: listing the authority %s", policy.name, endpoint.describe())
        skipped = [(path, f"local: {reason}") for path, reason in stats.skipped]
        skipped += endpoint.refresh_listing(db, policy.name, deep=deep)
        counts = dict.fromkeys(STATUSES, 0)
        items = []
        corrupt = set(getattr(stats, "corrupt", ()))
        for path, local_size, authority_size, status, reason, etag in db.compare(policy.name):
            if status == "etag":
                status, reason = check_multipart(endpoint, policy, path, etag)
            if status == "missing_local" and (reason or "").startswith(NOTHING_TO_DOWNLOAD):
                status = "unverifiable"  # no pull can fetch it: listed, but never a finding
            if path in corrupt and status == "changed":
                reason = CORRUPT_REASON
            counts[status] += 1
            if status != "ok":
                items.append(item(path, status, reason, local_size, authority_size, algorithm))
        for path, reason in skipped:
            counts["unverifiable"] += 1
            items.append({"path": path, "status": "unverifiable", "reason": reason})
        items.sort(key=lambda entry: (entry["path"], entry["status"]))
        db.replace_findings(policy.name, items)
        failing = FINDINGS + (("unverifiable",) if strict else ())
        findings = sum(counts[status] for status in failing)
        outcome.update(name=policy.name, authority=endpoint.describe(), counts=counts, items=items,
                       local={"files": stats.files, "bytes": stats.bytes, "hashed": stats.hashed,
                              "hashed_bytes": stats.hashed_bytes},
                       exit_code=EXIT_FINDINGS if findings else EXIT_OK)
        log.info("%s: %s", policy.name, ", ".join(f"{counts[s]} {s}" for s in STATUSES))
        if policy.offsite:  # informational: never changes the statuses or the exit code
            from syncer.actions.offsite import compare_with_offsite

            outcome["offsite"] = compare_with_offsite(policy, db)
    return dict(outcome)


def item(path, status, reason, local_size, authority_size, algorithm=None):
    entry = {"path": path, "status": status}
    if reason:
        entry["reason"] = reason
    if status == "changed" and local_size != authority_size:
        entry["reason"] = f"size {local_size} here, {authority_size} at the authority"
    elif status == "changed" and not reason:
        entry["reason"] = f"content differs ({algorithm})" if algorithm else "content differs"
    return entry


def check_multipart(endpoint, policy, path, etag):
    """Verify a local file against an S3 multipart ETag. Return (status, reason)."""
    local_file = policy.path / path
    parts = int(etag.rsplit("-", 1)[1])
    size = local_file.stat().st_size
    for mib in COMMON_PART_SIZES_MIB:
        part_size = mib * 2**20
        if -(-size // part_size) == parts and s3_multipart_etag(local_file, part_size) == etag:
            return "ok", None
    sha256 = getattr(endpoint, "head_sha256", lambda path: None)(path)
    if sha256:
        from syncer.index.hashing import hash_file

        local = hash_file(local_file, ("sha256",)).digests["sha256"]
        return ("ok", None) if local == sha256 else ("changed", "x-amz-checksum-sha256 differs")
    return "unverifiable", f"multipart ETag with {parts} parts of unknown size and no x-amz-checksum"
