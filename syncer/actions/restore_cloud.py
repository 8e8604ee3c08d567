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
Documents (DNS zones): a zone whose records differ is written as a whole document, the
item's reason saying what changes (create, update, delete); what only the service holds
is kept and listed unless `delete`; a derived document (a zone file export) follows its
source and is never written.

Memory stays flat whatever the file count: the authority's listing is kept in a scratch
SQLite file and looked up per path, the uploads are fed to the pool as it frees up, and
the report counts every item but keeps at most ITEMS_KEPT of them (common.ItemTally).
"""

import logging
import os
import shutil
import tempfile
from pathlib import Path

from syncer.actions.common import DOCUMENT_LIMIT, BoundedPool, ItemTally, document_copy, run_in_threads
from syncer.actions.hooks import with_hooks
from syncer.actions.restore import restore_snapshot, walk_files
from syncer.endpoints.base import entry_copy
from syncer.endpoints.factory import DEFAULT_CONCURRENCY, build_endpoint, build_s3_target
from syncer.errors import EXIT_FINDINGS, EXIT_OK, EndpointError, UsageError
from syncer.index.hashing import hash_file
from syncer.index.scratch import ListingStore
from syncer.verdict import UNVERIFIABLE, Copy, judge

log = logging.getLogger("syncer.restore")


def run_restore_cloud(policy, db, target, snapshot="latest", includes=(), dry_run=False, credentials_file=None,
                      endpoint_url=None, delete=False):
    """Restore `policy`'s dataset from `snapshot` to its authority (`target` "cloud") or
    to an S3 bucket (`target` "s3://BUCKET/PREFIX"), between the policy's restore hooks
    (the whole of it is one restore). With `delete`, what only the service holds inside
    a document (a zone's records) is deleted. Return the report: exit 1 when an upload
    failed or was refused."""
    return with_hooks(policy, "restore", lambda: restore_snapshot_to_cloud(
        policy, db, target, snapshot, includes, dry_run, credentials_file, endpoint_url, delete), dry_run)


def restore_snapshot_to_cloud(policy, db, target, snapshot, includes, dry_run, credentials_file, endpoint_url,
                              delete=False):
    """See run_restore_cloud; return the report."""
    concurrency = (policy.pull and policy.pull.concurrency) or DEFAULT_CONCURRENCY
    if target == "cloud":
        endpoint = build_endpoint(policy, dry_run=dry_run, concurrency=concurrency)
    else:
        if not credentials_file:
            raise UsageError(f"--to {target}: give --credentials FILE (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
        endpoint = build_s3_target(target, credentials_file, endpoint_url, dry_run, concurrency)
    if delete and not endpoint.capabilities.documents:
        raise UsageError(f"--delete: {endpoint.describe()} holds files; a restore never deletes files there "
                         "(--delete removes the records only a DNS zone upstream holds)")
    staging = Path(db.state_dir) / "restore-cloud" / f"{policy.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    items = ItemTally()
    try:
        restored = restore_snapshot(policy, db, staging, snapshot, includes)
        if restored.get("error"):  # the snapshot does not match its manifest: nothing goes up
            return dict(restored, target=endpoint.describe(), dry_run=dry_run, counts={}, items=[])
        log.info("%s: snapshot %s restored to staging and checked; comparing with %s", policy.name,
                 restored["snapshot"][:8], endpoint.describe())
        if endpoint.capabilities.repositories:
            items.add_all(restore_repositories(endpoint, staging, concurrency, dry_run))
        elif endpoint.capabilities.documents:
            items.add_all(write_documents(endpoint, staging, delete, dry_run))
        else:
            items.add_all(upload_files(endpoint, staging, concurrency, dry_run))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    counts = items.counts
    failed = counts.get("failed", 0) + counts.get("refused", 0)
    report = {"name": policy.name, "snapshot": restored["snapshot"], "target": endpoint.describe(),
              "dry_run": dry_run, "counts": counts, "items": items.kept_items(),
              "exit_code": EXIT_FINDINGS if failed else EXIT_OK}
    if items.left_off:
        report["items_left_off"] = items.left_off
    log.info("%s: %s", policy.name, ", ".join(f"{count} {status}" for status, count in counts.items()) or "nothing")
    return report


def upload_files(endpoint, root, concurrency, dry_run=False):
    """Upload every file below `root` that the endpoint lacks or holds with other
    content. Return items {path, status, reason?}: uploaded (the service took it),
    to_upload (dry run), present (same checksum), present_unverifiable (held there with
    no checksum to compare: not uploaded), failed; an iterator, each item yielded as it
    is decided, the listing looked up in a scratch file beside `root`."""
    if not endpoint.capabilities.can_write:
        raise UsageError(f"{endpoint.describe()} cannot be written to: {endpoint.capabilities.reason}")
    return compare_and_upload(endpoint, root, concurrency, dry_run)


def compare_and_upload(endpoint, root, concurrency, dry_run):
    """Yield upload_files' items as they are decided (see there)."""
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=f"{root.name}-listing-") as scratch, \
            ListingStore(Path(scratch) / "listing.sqlite") as listing:
        listing.load(endpoint.list_entries())

        def upload(job):
            relative, path, digests, _why = job
            endpoint.write_entry(relative, path, digests)

        with BoundedPool(upload, concurrency, "upload") as pool:
            for relative, path in walk_files(root):
                hashed = hash_file(path, ("md5", "sha256"))
                remote = listing.get(relative)
                # Present or absent is the listing's identity; same or differs is the verdict's.
                verdict = judge(entry_copy(remote), Copy(hashed.size, hashed.digests)) if remote is not None else None
                if verdict and verdict.ok:
                    yield {"path": relative, "status": "present"}
                elif verdict and verdict.status == UNVERIFIABLE:
                    yield {"path": relative, "status": "present_unverifiable", "reason": verdict.reason}
                else:
                    why = "differs at the authority" if remote is not None else "missing at the authority"
                    for outcome in pool.submit((relative, path, hashed.digests, why)):
                        yield upload_item(outcome, dry_run)
            for outcome in pool.drain():
                yield upload_item(outcome, dry_run)


def upload_item(outcome, dry_run):
    """Return the item of one upload's outcome (job, result, error)."""
    (relative, _, _, why), _, error = outcome
    if error is None:
        return {"path": relative, "status": "to_upload" if dry_run else "uploaded", "reason": why}
    return {"path": relative, "status": "failed", "reason": str(error)}


def write_documents(endpoint, root, delete=False, dry_run=False):
    """Bring each document below `root` (a zone's records) back to the endpoint, one at
    a time. Return items: present (says the same; what only the service holds is named
    when kept), uploaded / to_upload (the reason says what changes), follows (a derived
    document, which the service rebuilds from its source), skipped (a file the service
    takes no document for), failed."""
    documents = endpoint.capabilities.documents
    items = []
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=f"{root.name}-documents-") as scratch, \
            ListingStore(Path(scratch) / "listing.sqlite") as listing:
        listing.load(endpoint.list_entries())
        for relative, path in walk_files(root):
            remote = listing.get(relative)
            ours = Path(path).read_bytes()
            if not documents.writable(relative):
                if remote is None:  # not a document the service holds (a note beside the zones)
                    items.append({"path": relative, "status": "skipped", "reason": endpoint.capabilities.reason})
                elif judge(entry_copy(remote), document_copy(documents, relative, ours)).ok:
                    items.append({"path": relative, "status": "present"})
                else:
                    items.append({"path": relative, "status": "follows",
                                  "reason": "the service rebuilds it from what was written"})
                continue
            try:
                items.append(write_document(endpoint, documents, relative, ours, remote, Path(scratch), delete,
                                            dry_run))
            except (EndpointError, ValueError) as error:
                items.append({"path": relative, "status": "failed", "reason": str(error)})
    return items


def write_document(endpoint, documents, relative, ours, remote, scratch, delete, dry_run):
    """Write one document unless the service's says the same; return its item."""
    there = None
    if remote is not None and remote.checksum:
        with endpoint.open_entry(remote) as stream:
            there = stream.read(DOCUMENT_LIMIT + 1)
    wanted, kept = (ours, None) if there is None or delete else documents.merge(relative, ours, there)
    kept_note = f"only upstream, kept (restore --delete deletes them): {kept}" if kept else None
    if remote is not None and judge(entry_copy(remote), document_copy(documents, relative, wanted)).ok:
        return {"path": relative, "status": "present", **({"reason": kept_note} if kept_note else {})}
    if there is not None:
        plan = documents.plan(relative, wanted, there)
    else:
        plan = remote.note if remote is not None else f"not listed at {endpoint.describe()}"
    source = scratch / "document"
    source.write_bytes(wanted)
    endpoint.write_entry(relative, str(source), {"sha256": documents.digest(relative, wanted)})
    reason = "; ".join(text for text in (plan, kept_note) if text)
    return {"path": relative, "status": "to_upload" if dry_run else "uploaded", "reason": reason}


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
