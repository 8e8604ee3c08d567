"""verify: compare the local copy with the authoritative copy, by checksum."""

import logging
import time
from dataclasses import replace
from pathlib import Path

from syncer.actions.common import (
    DOCUMENT_LIMIT,
    ItemTally,
    document_copy,
    for_each_dataset,
    read_local_document,
    recorded_run,
    require_on_this_machine,
)
from syncer.endpoints import git
from syncer.endpoints.factory import build_endpoint
from syncer.errors import EXIT_FINDINGS, EXIT_OK, EndpointError
from syncer.index.db import AUTHORITY, LOCAL
from syncer.index.hashing import s3_multipart_etag
from syncer.index.lock import dataset_lock
from syncer.index.scan import ScanJob, ScanStats, scan_tree, scan_trees
from syncer.verdict import CHANGED, OK, UNVERIFIABLE, Copy, judge

log = logging.getLogger("syncer.verify")
STATUSES = ("ok", "missing_local", "extra_local", "changed", "unverifiable")
FINDINGS = ("missing_local", "extra_local", "changed")
CORRUPT_REASON = "content changed under an unchanged size and mtime (bit rot?); `syncer repair` restores it"
# Part sizes that common S3 clients use for multipart uploads (aws cli and boto3 8 MiB,
# rclone 5 MiB, s3cmd 15 MiB, restic/minio 16 MiB, larger for big files).
COMMON_PART_SIZES_MIB = (8, 5, 16, 15, 10, 32, 64, 100, 128, 256, 512)
# The local digest of a mirror whose refs cannot be read or that fails git fsck: never equal, so "changed".
FSCK_FAILED = "0" * 64


def run_verify(policies, db, deep=False, strict=False, progress=None, changed=None, changed_authority=None):
    """Verify each policy's dataset. Return the report.

    `changed` maps a dataset's name to the paths below it that changed since its last
    verify (what a watch that lost nothing saw): only those are examined on the local
    side, instead of a walk of the tree. `changed_authority` does the same for the
    directory of a `local` authority. Given the changes of both sides (an authority
    that is not a local directory is listed and diffed), only the changed paths are
    compared and the others' findings carried over (syncer.actions.verify_changes).

    report = {"datasets": [{"name", "counts", "items", ...}]}; exit 1 when a dataset
    has missing, extra or changed items (or unverifiable ones with `strict`), 3 when
    a dataset could not be verified at all.
    """
    def work(policy):
        with dataset_lock(db.state_dir, policy.name):
            paths = (changed or {}).get(policy.name)
            if paths is not None and not deep:
                from syncer.actions.verify_changes import verify_by_changes

                report = verify_by_changes(policy, db, strict, paths, (changed_authority or {}).get(policy.name))
                if report is not None:
                    return report
            return verify_dataset(policy, db, deep, strict, progress, paths)

    return for_each_dataset(policies, work, action="verify")


def verify_dataset(policy, db, deep=False, strict=False, progress=None, changed_paths=None):
    with recorded_run(db, policy.name, "verify") as outcome:
        require_on_this_machine(policy, "path", "authority")  # never offsite's: verify needs no repository
        endpoint = build_endpoint(policy)
        algorithm = endpoint.capabilities.checksum or "sha256"
        log.info("%s: indexing the local copy %s", policy.name, policy.path)
        mirrors = authority_stats = None
        if endpoint.capabilities.repositories:
            stats, mirrors = index_mirrors(db, policy.name, policy.path, deep)
        elif changed_paths is not None and not deep:
            from syncer.index.dirty import refresh_paths

            log.info("%s: %d path(s) changed since the last walk (the watch lost nothing): examining only those",
                     policy.name, len(changed_paths))
            stats = refresh_paths(db, policy.name, policy.path, changed_paths, policy.exclude, (algorithm,))
        else:
            # a local authority's directory is walked with the local copy: the walker
            # processes share out both trees, so neither's tail leaves the cores idle
            exclude = tuple(policy.exclude or ())
            jobs = [ScanJob(policy.name, LOCAL, str(policy.path), exclude, (algorithm,), deep)]
            if (authority_root := local_authority_root(endpoint)) is not None:
                jobs.append(ScanJob(policy.name, AUTHORITY, str(authority_root), exclude, ("sha256",), deep))
            # the walkers count both trees' files together, and the progress line says so
            label = policy.name if len(jobs) == 1 else f"{policy.name} and its authority"
            stats, *authority_stats = scan_trees(
                db, jobs, progress=progress and (lambda files, hashed: progress(label, files, hashed)))
        log.info("%s: %d files, %d hashed (%.1f MiB) in %.1fs", policy.name, stats.files, stats.hashed,
                 stats.hashed_bytes / 2**20, stats.seconds)
        skipped = [(path, f"local: {reason}") for path, reason in stats.skipped]
        if authority_stats:
            log.info("%s: the authority %s, walked with it: %d files, %d hashed (%.1f MiB)", policy.name,
                     endpoint.describe(), authority_stats[0].files, authority_stats[0].hashed,
                     authority_stats[0].hashed_bytes / 2**20)
        else:
            log.info("%s: listing the authority %s", policy.name, endpoint.describe())
        skipped += index_authority(db, policy, endpoint, deep, mirrors, authority_stats)
        counts = dict.fromkeys(STATUSES, 0)
        kept = ItemTally(quiet=())  # a bounded number listed; every finding counted and stored
        # a document (a DNS zone) is compared by what it says, not its bytes: every row is judged
        equal = None if endpoint.capabilities.documents else []

        def findings():
            yield from judge_rows(endpoint, policy, db.compare(policy.name, equal), set(stats.corrupt), counts)
            for path, reason in skipped:
                counts["unverifiable"] += 1
                yield {"path": path, "status": "unverifiable", "reason": reason}

        db.replace_findings(policy.name, (kept.add(item) or item for item in findings()))
        counts[OK] += sum(equal or ())
        report_dataset(outcome, policy, db, endpoint, stats, counts, kept.kept_items(), strict,
                       "changes" if changed_paths is not None and not deep else "tree")
        if kept.left_off:
            outcome["items_left_off"] = kept.left_off
    return dict(outcome)


def judge_rows(endpoint, policy, rows, corrupt, counts):
    """Judge StateDB.compare's `rows`, counting each status in `counts`; yield an item
    for each row that is not ok (a path of `corrupt` that changed is named bit rot)."""
    for row in rows:
        path = row[0] or row[5]
        status, reason = judge_row(endpoint, policy, row)
        if path in corrupt and status == CHANGED:
            reason = CORRUPT_REASON
        counts[status] += 1
        if status != OK:
            yield {"path": path, "status": status, **({"reason": reason} if reason else {})}


def report_dataset(outcome, policy, db, endpoint, stats, counts, items, strict, examined, coverage=True):
    """Fill a verify's `outcome` from its counts and items (`examined`: "tree" when the
    local copy was walked, "changes" when only what the watch saw change was). Without
    `coverage`, checksum_coverage is None: its sum over every local row is left to a
    verify that reads them all anyway."""
    failing = FINDINGS + (("unverifiable",) if strict else ())
    findings = sum(counts[status] for status in failing)
    outcome.update(name=policy.name, authority=endpoint.describe(), counts=counts, items=items,
                   local={"files": stats.files, "bytes": stats.bytes, "hashed": stats.hashed,
                          "hashed_bytes": stats.hashed_bytes, "examined": examined},
                   exit_code=EXIT_FINDINGS if findings else EXIT_OK)
    outcome["checksum_coverage"] = None
    if coverage:  # for the status page's coverage history
        _, local_bytes, verified_bytes = db.totals(policy.name, LOCAL)
        outcome["checksum_coverage"] = round(verified_bytes / local_bytes, 4) if local_bytes else None
    log.info("%s: %s", policy.name, ", ".join(f"{counts[s]} {s}" for s in STATUSES))
    if policy.offsite:  # informational: never changes the statuses or the exit code
        from syncer.actions.offsite import compare_with_offsite

        outcome["offsite"] = compare_with_offsite(policy, db)


def local_authority_root(endpoint):
    """Return the directory of an authority on this machine (None for a service); raise
    EndpointError if it is not there: a missing disk is never an empty authority."""
    root = endpoint.capabilities.local_root
    if root is not None and not root.is_dir():
        raise EndpointError(f"{endpoint.describe()}: directory does not exist or is not mounted", permanent=True)
    return root


def index_authority(db, policy, endpoint, deep=False, mirrors=None, scanned=None):
    """Record the authority's listing as the dataset's authority side of the index.
    Return (path, reason) of the items that could not be indexed.

    A directory on this machine is indexed with the hash cache, so a warm verify reads
    nothing there that did not change (`scanned`: [its ScanStats] when the local walk
    did it already). A repository whose local mirror differs gets a note saying how
    (`mirrors` from index_mirrors)."""
    root = local_authority_root(endpoint)
    if root is not None:
        stats = scanned[0] if scanned else scan_tree(db, policy.name, AUTHORITY, root, policy.exclude, ("sha256",),
                                                     deep=deep)
        return [(path, f"authority: {reason}") for path, reason in stats.skipped]
    entries = endpoint.list_entries()
    if mirrors is not None:
        entries = (note_mirror_difference(entry, mirrors.get(entry.path)) for entry in entries)
    if endpoint.capabilities.documents:
        entries = (note_document_difference(endpoint, entry, policy.path) for entry in entries)
    db.replace_listing(policy.name, entries)
    return []


def index_mirrors(db, dataset, root, deep=False):
    """Index the bare git mirrors below `root` as the dataset's local side: one row per
    repository with its refs digest. `git fsck` runs when the refs changed since the
    last good check, or always with `deep`. Return (ScanStats, {path: (refs, fsck
    problem or None)})."""
    started = time.monotonic()
    stats, mirrors, records = ScanStats(), {}, []
    previous = {row[0]: row[4] for row in db.iterate_files(dataset, LOCAL)}
    for relative in git.find_mirrors(root):
        stats.files += 1
        absolute = Path(root) / relative
        try:
            refs = git.local_refs(absolute)
        except EndpointError as error:
            mirrors[relative] = ({}, str(error))
            records.append({"path": relative, "size": None, "sha256": FSCK_FAILED, "hashed_at": time.time()})
            continue
        digest = git.refs_digest(refs)
        problem = None
        if deep or previous.get(relative) != digest:
            stats.hashed += 1
            problem = git.fsck_problem(absolute)
        mirrors[relative] = (refs, problem)
        records.append({"path": relative, "size": None, "sha256": FSCK_FAILED if problem else digest,
                        "hashed_at": time.time()})
    with db.transaction():
        db.delete_paths(dataset, LOCAL, [path for path in previous if path not in mirrors])
        db.upsert_files(dataset, LOCAL, records)
    stats.seconds = time.monotonic() - started
    return stats, mirrors


def note_mirror_difference(entry, local):
    """Return the repository `entry` with a note on how the local mirror, `local` =
    (refs, fsck problem or None), differs from it; verify shows the note as the reason."""
    if not local or not entry.checksum:
        return entry
    refs, problem = local
    note = f"git fsck failed: {problem}" if problem else git.describe_ref_differences(refs, entry.ref["refs"])
    return replace(entry, note=note or None)


def note_document_difference(endpoint, entry, root):
    """Return the document `entry` with a note naming how the local document differs
    from it (a zone's records: `+ www A 192.0.2.7 ttl 600; - mail MX ...`); verify
    shows the note as the reason of a `changed` item."""
    documents = endpoint.capabilities.documents
    here = read_local_document(root, entry.path) if entry.checksum else None
    if here is None or documents.digest(entry.path, here) == entry.checksum:
        return entry
    with endpoint.open_entry(entry) as stream:
        there = stream.read(DOCUMENT_LIMIT + 1)
    return replace(entry, note=documents.difference(entry.path, here, there) or None)


def judge_row(endpoint, policy, row):
    """Return the verdict on one row of StateDB.compare. An S3 multipart ETag is the one
    checksum the index holds for no local file: it is recomputed when nothing else decides.
    A document (a DNS zone) is digested as its endpoint's Documents say."""
    local_path, local_size, local_md5, local_sha256, local_note, authority_path, size, md5, sha256, etag, note = row
    found = local_path and Copy(local_size, {"md5": local_md5, "sha256": local_sha256}, None,
                                local_note and f"local: {local_note}")
    expected = authority_path and Copy(size, {"md5": md5, "sha256": sha256, "etag": etag}, None, note)
    documents = endpoint.capabilities.documents
    if documents and found and not found.note:  # compared by what the document says, not its bytes
        found = document_copy(documents, local_path, read_local_document(policy.path, local_path)) or found
    verdict = judge(expected, found)
    if etag and found and verdict.status == UNVERIFIABLE and not found.note:
        return check_multipart(endpoint, policy, local_path, expected)
    return verdict


def check_multipart(endpoint, policy, path, expected):
    """Verify a local file against an S3 multipart ETag: recompute it for the part
    sizes common clients use, else compare the object's x-amz-checksum-sha256."""
    local_file = policy.path / path
    etag = expected.digests["etag"]
    parts = int(etag.rsplit("-", 1)[1])
    size = local_file.stat().st_size
    for mib in COMMON_PART_SIZES_MIB:
        part_size = mib * 2**20
        if -(-size // part_size) == parts:
            verdict = judge(expected, Copy(size, {"etag": s3_multipart_etag(local_file, part_size)}))
            if verdict.ok:
                return verdict
    sha256 = endpoint.head_sha256(path) if endpoint.capabilities.head_sha256 else None
    if sha256:
        from syncer.index.hashing import hash_file

        return judge(Copy(expected.size, {"sha256": sha256}), Copy(size, hash_file(local_file, ("sha256",)).digests))
    return judge(Copy(expected.size, note=f"multipart ETag with {parts} parts of unknown size and no x-amz-checksum"),
                 Copy(size))
