"""restore --to cloud | s3://BUCKET/PREFIX: put a snapshot back into the authoritative copy.

The snapshot is restored into a staging directory in the state dir with the offsite
restore (syncer.actions.restore.run_restore: every file checked against the
snapshot's manifest), compared with the authority's listing, and only what is missing
or differs is uploaded, each upload carrying the service's checksum (Bunny
`Checksum`, SmugMug `Content-MD5`, S3 `Content-MD5`). Present or absent is decided by
the item's identity (its path in the listing), same or differs by a checksum; an item
present with no checksum to compare is `present_unverifiable` and never uploaded again
(SmugMug would keep a second copy). `uploaded` means the service took the file.
Running it twice uploads nothing the second time. GitLab: a missing project is
created, then its branches and tags are pushed (not `--mirror`: GitLab rejects hidden
refs; not forced: history that moved on upstream is reported, never overwritten).
"""

import logging
import os
import shutil
from pathlib import Path

from syncer.actions.common import run_in_threads
from syncer.actions.hooks import with_hooks
from syncer.actions.restore import restore_snapshot, walk_files
from syncer.endpoints.base import entry_copy
from syncer.endpoints.factory import DEFAULT_CONCURRENCY, build_endpoint, build_s3_target
from syncer.errors import EXIT_FINDINGS, EXIT_OK, UsageError
from syncer.index.hashing import hash_file
from syncer.verdict import UNVERIFIABLE, Copy, judge

log = logging.getLogger("syncer.restore")


def run_restore_cloud(policy, db, target, snapshot="latest", includes=(), dry_run=False, credentials_file=None,
                      endpoint_url=None):
    """Restore `policy`'s dataset from `snapshot` to its authority (`target` "cloud") or
    to an S3 bucket (`target` "s3://BUCKET/PREFIX"), between the policy's restore hooks
    (the whole of it is one restore). Return the report: exit 1 when an upload
    failed or was refused."""
    return with_hooks(policy, "restore", lambda: restore_snapshot_to_cloud(
        policy, db, target, snapshot, includes, dry_run, credentials_file, endpoint_url), dry_run)


def restore_snapshot_to_cloud(policy, db, target, snapshot, includes, dry_run, credentials_file, endpoint_url):
    """See run_restore_cloud; return the report."""
    concurrency = (policy.pull and policy.pull.concurrency) or DEFAULT_CONCURRENCY
    if target == "cloud":
        endpoint = build_endpoint(policy, dry_run=dry_run, concurrency=concurrency)
    else:
        if not credentials_file:
            raise UsageError(f"--to {target}: give --credentials FILE (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
        endpoint = build_s3_target(target, credentials_file, endpoint_url, dry_run, concurrency)
    staging = Path(db.state_dir) / "restore-cloud" / f"{policy.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        restored = restore_snapshot(policy, db, staging, snapshot, includes)
        if restored.get("error"):  # the snapshot does not match its manifest: nothing goes up
            return dict(restored, target=endpoint.describe(), dry_run=dry_run, counts={}, items=[])
        log.info("%s: snapshot %s restored to staging and checked; comparing with %s", policy.name,
                 restored["snapshot"][:8], endpoint.describe())
        if endpoint.capabilities.repositories:
            items = restore_repositories(endpoint, staging, concurrency, dry_run)
        else:
            items = upload_files(endpoint, staging, concurrency, dry_run)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    counts = {}
    for entry in items:
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    failed = counts.get("failed", 0) + counts.get("refused", 0)
    report = {"name": policy.name, "snapshot": restored["snapshot"], "target": endpoint.describe(),
              "dry_run": dry_run, "counts": counts,
              "items": sorted((entry for entry in items if entry["status"] != "present"), key=lambda e: e["path"]),
              "exit_code": EXIT_FINDINGS if failed else EXIT_OK}
    log.info("%s: %s", policy.name, ", ".join(f"{count} {status}" for status, count in counts.items()) or "nothing")
    return report


def upload_files(endpoint, root, concurrency, dry_run=False):
    """Upload every file below `root` that the endpoint lacks or holds with other
    content. Return items {path, status, reason?}: uploaded (the service took it),
    to_upload (dry run), present (same checksum), present_unverifiable (held there with
    no checksum to compare: not uploaded), failed."""
    if not endpoint.capabilities.can_write:
        raise UsageError(f"{endpoint.describe()} cannot be written to: {endpoint.capabilities.reason}")
    listing = {entry.path: entry for entry in endpoint.list_entries()}
    jobs, items = [], []
    for relative, path in walk_files(root):
        hashed = hash_file(path, ("md5", "sha256"))
        remote = listing.get(relative)
        # Present or absent is the listing's identity; same or differs is the verdict's.
        verdict = judge(entry_copy(remote), Copy(hashed.size, hashed.digests)) if remote is not None else None
        if verdict and verdict.ok:
            items.append({"path": relative, "status": "present"})
        elif verdict and verdict.status == UNVERIFIABLE:
            items.append({"path": relative, "status": "present_unverifiable", "reason": verdict.reason})
        else:
            jobs.append((relative, path, hashed.digests,
                         "differs at the authority" if remote is not None else "missing at the authority"))

    def upload(job):
        relative, path, digests, _why = job
        endpoint.write_entry(relative, path, digests)

    for (relative, _, _, why), _, error in run_in_threads(upload, jobs, concurrency, "upload"):
        if error is None:
            items.append({"path": relative, "status": "to_upload" if dry_run else "uploaded", "reason": why})
        else:
            items.append({"path": relative, "status": "failed", "reason": str(error)})
    return items


def restore_repositories(endpoint, root, concurrency, dry_run=False):
    """Create missing projects and push each restored mirror's branches and tags."""
    from syncer.endpoints import git

    projects = {project.get("path_with_namespace"): project for project in endpoint.list_projects()}
    items = []

    def restore(relative):
        path_with_namespace = relative[:-len(".git")]
        mirror = root / relative
        local = git.local_refs(mirror)
        project = projects.get(path_with_namespace)
        if project is None:
            namespace, _, name = path_with_namespace.rpartition("/")
            project = endpoint.create_project(namespace, name)
            if dry_run:
                return "to_create", f"project {path_with_namespace} does not exist"
            created = True
        else:
            created = False
            remote = Copy(digests={"sha256": git.refs_digest(endpoint.remote_refs(project))})
            if judge(remote, Copy(digests={"sha256": git.refs_digest(local)})).ok:
                return "present", None
        if not local:
            return ("created", "empty repository") if created else ("present", None)
        endpoint.push_refs(mirror, project)
        if dry_run:
            return "to_push", None
        return ("created", f"{len(local)} branches and tags pushed") if created else \
            ("pushed", f"{len(local)} branches and tags")

    for relative, outcome, error in run_in_threads(restore, git.find_mirrors(root), concurrency, "push"):
        status, reason = outcome if error is None else ("failed", str(error))
        items.append({"path": relative, "status": status, **({"reason": reason} if reason else {})})
    return items
