"""pull: bring the local copy up to date from the authoritative copy.

Files: download what is missing or changed, a few at a time; each download is written
by syncer.fsio.write_file (a temporary file beside its target, checked against the
authority's checksum, fsynced, renamed into place, never through a symlink), so an
interrupted pull never leaves a half file under a real name and bad bytes never
replace a good file. A mismatch is downloaded again, then reported. Local-only files
are reported, or with `pull: {delete: true}` moved to a trash folder in the state
directory (never unlinked).

Memory stays flat whatever the file count: the authority's listing goes into a scratch
SQLite file and is merged in path order with the index's rows, what is to download is
kept in a second one, and the report counts every item but keeps a bounded number.

GitLab: `git clone --mirror` new projects, `git remote update --prune` existing ones.
"""

import hashlib
import io
import logging
import os
import tempfile
import time
from pathlib import Path

from syncer.actions.common import (
    DOCUMENT_LIMIT,
    ItemTally,
    document_copy,
    for_each_dataset,
    map_in_threads,
    read_local_document,
    recorded_run,
    require_on_this_machine,
    run_in_threads,
)
from syncer.endpoints import git
from syncer.endpoints.base import check_relative_path, entry_copy
from syncer.endpoints.factory import DEFAULT_CONCURRENCY, build_endpoint
from syncer.errors import EXIT_FINDINGS, EXIT_OK, EndpointError
from syncer.fsio import (
    DIGESTS,
    DigestMismatch,
    UnsafePath,
    fsync_folder,
    is_temporary_name,
    move_file,
    open_folder,
    remove_temporaries,
    split_relative,
    write_file,
)
from syncer.index.db import LOCAL, parent_of
from syncer.index.exclude import compile_excludes
from syncer.index.lock import dataset_lock
from syncer.index.scan import scan_tree
from syncer.index.scratch import ListingStore
from syncer.verdict import UNVERIFIABLE, Copy, judge

log = logging.getLogger("syncer.pull")
DOWNLOAD_ATTEMPTS = 3  # a checksum mismatch is downloaded again this often, then reported
RECORDS_BATCH = 1000  # downloaded files recorded in the index at a time
# Statuses that make a pull exit 1: something could not be brought in line.
FINDINGS = ("failed", "refused", "local_only")
COUNTED = ("downloaded", "up_to_date", "unverifiable", "failed", "refused", "local_only", "trashed",
           "cloned", "updated", "to_download", "to_trash", "to_clone", "to_update")


def run_pull(policies, db, dry_run=False, progress=None):
    """Pull each policy's dataset. Return the report: exit 1 when a file failed
    its checksum, a remote name was refused or local-only files remain; 3 when a dataset
    could not be pulled at all."""
    def work(policy):
        with dataset_lock(db.state_dir, policy.name):
            return pull_dataset(policy, db, dry_run)

    return for_each_dataset(policies, work, action="pull", dry_run=dry_run)


def pulls_on_run(policy):
    """Whether `syncer run` pulls this dataset: always for a cloud authority; for a
    `local` authority only when the policy has a `pull:` section, because there the
    local copy's differences are usually what the user wants shown, not overwritten."""
    return policy.authority.type != "local" or policy.pull is not None


def pull_settings(policy):
    return bool(policy.pull and policy.pull.delete), (policy.pull and policy.pull.concurrency) or DEFAULT_CONCURRENCY


def pull_dataset(policy, db, dry_run=False):
    delete, concurrency = pull_settings(policy)
    with recorded_run(db, policy.name, "pull") as outcome:
        require_on_this_machine(policy, "path", "authority")
        endpoint = build_endpoint(policy, concurrency=concurrency)
        policy.path.mkdir(parents=True, exist_ok=True)
        log.info("%s: pulling from %s%s", policy.name, endpoint.describe(), " (dry run)" if dry_run else "")
        items = ItemTally(quiet=("up_to_date",))
        if endpoint.capabilities.repositories:
            items.add_all(pull_repositories(policy, db, endpoint, concurrency, delete, dry_run))
        else:
            pull_files(policy, db, endpoint, concurrency, delete, dry_run, items)
        findings = sum(items.counts.get(status, 0) for status in FINDINGS)
        outcome.update(name=policy.name, authority=endpoint.describe(), dry_run=dry_run,
                       counts={status: items.counts[status] for status in COUNTED if items.counts.get(status)},
                       items=items.kept_items(), exit_code=EXIT_FINDINGS if findings else EXIT_OK)
        if items.left_off:
            outcome["items_left_off"] = items.left_off
        log.info("%s: %s", policy.name, ", ".join(f"{count} {status}" for status, count in outcome["counts"].items())
                 or "nothing to do")
    return dict(outcome)


def item(path, status, reason=None):
    entry = {"path": path, "status": status}
    if reason:
        entry["reason"] = reason
    return entry


# --- files ------------------------------------------------------------------------------


def pull_files(policy, db, endpoint, concurrency, delete, dry_run, items):
    """Pull the files of `policy`'s dataset, adding each item to `items` (an ItemTally)."""
    algorithm = endpoint.capabilities.checksum or "sha256"
    algorithms = tuple(sorted({algorithm, "sha256"} & {"md5", "sha256"}))
    log.info("%s: indexing the local copy %s", policy.name, policy.path)
    scan_tree(db, policy.name, LOCAL, policy.path, policy.exclude, algorithms)
    leftovers = [row[0] for row in db.iterate_files(policy.name, LOCAL) if is_temporary_path(row[0])]
    remove_leftovers(policy, db, leftovers, dry_run)
    log.info("%s: listing the authority %s", policy.name, endpoint.describe())
    with tempfile.TemporaryDirectory(dir=db.state_dir, prefix=f"pull-{policy.name}-") as scratch, \
            ListingStore(Path(scratch) / "listing.sqlite") as listing, \
            ListingStore(Path(scratch) / "wanted.sqlite") as wanted:
        listing.load(endpoint.list_entries())
        local_only = []
        # The index is read only while the listing is merged with it, and written only once
        # that is done: no cursor is ever open on a table being written.
        indexed = (row for row in db.iterate_files(policy.name, LOCAL) if not is_temporary_path(row[0]))
        wanted.load(entries_to_download(policy, endpoint, merge_by_path(listing.entries(), indexed), items,
                                        local_only))
        if dry_run:
            items.add_all(item(entry.path, "to_download", entry.note) for entry in wanted.entries())
        else:
            log.info("%s: downloading %d files, %d at a time", policy.name, len(wanted), concurrency)
            items.add_all(download_all(policy, db, endpoint, wanted.entries(), concurrency))
        items.add_all(handle_local_only(policy, db, local_only, len(listing) > 0, delete, dry_run))


def is_temporary_path(path):
    return is_temporary_name(path.rpartition("/")[2])


def merge_by_path(entries, rows):
    """Yield (entry, row) for every path of the listed `entries` and the index's `rows`
    ((path, ...) tuples), both in path order, None for the side that lacks the path:
    a merge of two sorted streams, so nothing is held."""
    entry, row = next(entries, None), next(rows, None)
    while entry is not None or row is not None:
        if row is None or (entry is not None and entry.path < row[0]):
            yield entry, None
            entry = next(entries, None)
        elif entry is None or row[0] < entry.path:
            yield None, row
            row = next(rows, None)
        else:
            yield entry, row
            entry, row = next(entries, None), next(rows, None)


def entries_to_download(policy, endpoint, pairs, items, local_only):
    """Decide each (listed entry, local row) of `pairs`: yield the entries to download;
    add the other items to `items`, and the paths only the local copy has to `local_only`."""
    is_excluded = compile_excludes(policy.exclude)
    documents = endpoint.capabilities.documents
    for entry, row in pairs:
        if entry is None:
            local_only.append(row[0])
            continue
        if is_excluded(entry.path):
            continue
        problem = check_relative_path(entry.path)
        if problem or (entry.note or "").startswith("unsafe name"):
            items.add(item(entry.path, "refused", entry.note or f"unsafe name: {problem}"))
            continue
        found = row and (row[1], {"md5": row[3], "sha256": row[4]})
        if documents and found:  # a document is compared by what it says (its digest), not its bytes
            found = document_copy(documents, entry.path, read_local_document(policy.path, entry.path))
        decision = decide(entry, found)
        if decision == "up_to_date":
            items.add(item(entry.path, "up_to_date"))
        elif decision == "kept":
            items.add(item(entry.path, "unverifiable", f"kept the local file: {entry.note or 'no checksum'}"))
        elif decision == "unavailable":
            items.add(item(entry.path, "unverifiable", entry.note or "no download URL"))
        else:
            yield entry


def decide(entry, local):
    """Return what to do with one listed entry given the local copy (a Copy, or
    (size, digests)) or None:
    up_to_date | kept (no checksum to compare; the local file stays) | unavailable |
    download."""
    if entry.ref is None and entry.note:
        return "kept" if local else "unavailable"
    verdict = judge(entry_copy(entry), local and Copy(*local))
    if verdict.status == UNVERIFIABLE and entry.algorithm not in ("md5", "sha256"):
        return "up_to_date" if entry.checksum else "kept"  # an S3 multipart ETag: verify recomputes it
    return "up_to_date" if verdict.ok else "download"


def download_all(policy, db, endpoint, entries, concurrency):
    """Download `entries` (any iterable) with at most `concurrency` in flight; yield their
    items and record the downloaded files' digests in the index (no second read by
    verify), RECORDS_BATCH at a time."""
    records = []
    outcomes = map_in_threads(lambda entry: download_one(endpoint, entry, policy.path), entries, concurrency, "pull",
                              (EndpointError, UnsafePath, OSError))
    for entry, outcome, error in outcomes:
        status, reason, record = outcome if error is None else (*failure(error), None)
        yield item(entry.path, status, reason)
        if record:
            records.append(record)
            if len(records) >= RECORDS_BATCH:
                record_downloads(policy, db, records)
                records = []
    record_downloads(policy, db, records)


def record_downloads(policy, db, records):
    """Record downloaded files in the index once their folders are durable."""
    # One fsync per directory makes the renames durable (the files' bytes were fsynced
    # before their rename): cheaper than one per file, and a crash before it only
    # means a file is downloaded again.
    for directory in sorted({(policy.path / record["path"]).parent for record in records}):
        fsync_folder(directory)
    if records:
        with db.transaction():
            db.upsert_files(policy.name, LOCAL, records)


def failure(error):
    """Return (status, reason) of a download or mirror that raised `error`."""
    if isinstance(error, UnsafePath):
        return "refused", str(error)
    if isinstance(error, OSError):
        return "failed", f"cannot write: {error.strerror or error}"
    return "failed", str(error)


def safe_target(root, relative):
    """Return the absolute path of the folder `relative` below `root` (a mirror),
    creating its parent folders without following symlinks. Raise UnsafePath when a
    component is a symlink or a file, or the target exists and is not a folder."""
    parts = split_relative(relative)
    os.close(open_folder(root, parts[:-1]))
    target = Path(root) / relative
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise UnsafePath(f"{relative} exists here and is not a directory")
    return target


def download_one(endpoint, entry, root):
    """Download one entry with write_file; return (status, reason, index record).
    A checksum or size mismatch is tried DOWNLOAD_ATTEMPTS times, then reported as
    failed; nothing is left behind and the target is left untouched."""
    expected = {entry.algorithm: entry.checksum} if entry.checksum and entry.algorithm in DIGESTS else {}
    documents = endpoint.capabilities.documents
    problem = None
    for _attempt in range(DOWNLOAD_ATTEMPTS):
        try:
            opener, checked = lambda: endpoint.open_entry(entry), expected
            if documents:
                opener, checked = read_document_entry(endpoint, entry, documents)
            # The folder is fsynced once, after all downloads (download_all).
            written = write_file(root, entry.path, opener, expected=checked,
                                 size=entry.size, algorithms=("md5", "sha256"),
                                 mtime_ns=int(entry.mtime * 1e9) if entry.mtime else None, sync_folder=False)
        except DigestMismatch as error:
            problem = error
            log.warning("%s: %s; downloading again", entry.path, problem)
            continue
        info = written.info
        record = {"path": entry.path, "size": info.st_size, "mtime_ns": info.st_mtime_ns,
                  "ctime_ns": info.st_ctime_ns, "dev": info.st_dev, "ino": info.st_ino,
                  "hashed_at": time.time(), **written.digests}
        if expected:
            return "downloaded", None, record
        if entry.algorithm == "etag":
            return "unverifiable", "multipart ETag: verify recomputes it for the usual part sizes", record
        return "unverifiable", f"downloaded without a checksum: {entry.note or 'none upstream'}", record
    return "failed", f"{problem} after {DOWNLOAD_ATTEMPTS} downloads; the local copy was left as it was", None


def read_document_entry(endpoint, entry, documents):
    """Read a document entry whole and check that it says what the listing's digest
    says; return (an opener of those bytes, their SHA-256 for write_file to check).
    Raise DigestMismatch when it does not."""
    with endpoint.open_entry(entry) as stream:
        data = stream.read(DOCUMENT_LIMIT + 1)
    verdict = judge(entry_copy(entry), document_copy(documents, entry.path, data))
    if not verdict.ok:
        raise DigestMismatch(f"the document read does not match the listing ({verdict.reason})")
    return (lambda: io.BytesIO(data)), {"sha256": hashlib.sha256(data).hexdigest()}


def remove_leftovers(policy, db, paths, dry_run):
    """Temporary files of an interrupted write (syncer's exact shape, which no listing
    holds) are ours: remove them."""
    if dry_run or not paths:
        return
    for folder in sorted({parent_of(path) for path in paths}):
        remove_temporaries(policy.path, folder)
    db.delete_paths(policy.name, LOCAL, paths)
    log.info("%s: removed %d temporary files of an interrupted pull", policy.name, len(paths))


def handle_local_only(policy, db, paths, authority_listed_anything, delete, dry_run):
    """Report local-only paths; with `delete`, move them to the trash in the state dir.
    An authority that listed nothing at all never empties the local copy."""
    if not delete or not paths:
        return [item(path, "local_only", "only in the local copy") for path in paths]
    if not authority_listed_anything:
        return [item(path, "local_only", "the authority listed nothing; not moving local files to the trash")
                for path in paths]
    if dry_run:
        return [item(path, "to_trash") for path in paths]
    trash = db.state_dir / "trash" / policy.name / time.strftime("%Y%m%d-%H%M%S")
    items = []
    for path in paths:
        destination = trash / path
        try:
            move_file(policy.path, path, destination)
        except (OSError, UnsafePath) as error:
            items.append(item(path, "failed", f"cannot move to the trash: {getattr(error, 'strerror', None) or error}"))
            continue
        db.delete_paths(policy.name, LOCAL, [path])
        items.append(item(path, "trashed", f"moved to {destination}"))
    log.info("%s: moved %d local-only files to %s", policy.name, len(paths), trash)
    return items


# --- GitLab repositories ------------------------------------------------------------------


def pull_repositories(policy, db, endpoint, concurrency, delete, dry_run):
    """Mirror every project of the configured groups into `<path_with_namespace>.git`."""
    root = policy.path
    skipped = []  # left by clones that were interrupted: under the dataset's lock, none is under way
    mirrors = set(git.find_mirrors(root, skipped))
    temporaries = [path for path in skipped if is_temporary_path(path)]
    for path in sorted(set(skipped) - set(temporaries)):
        log.warning("%s: %s is not a mirror (an earlier version's interrupted clone, or not syncer's); syncer "
                    "leaves it: delete it once you have looked", policy.name, path)
    if temporaries and not dry_run:
        try:
            removed = sum(remove_temporaries(root, folder, folders=True)
                          for folder in sorted({parent_of(path) for path in temporaries}))
            log.info("%s: removed %d folder(s) left by an interrupted clone", policy.name, removed)
        except OSError as error:  # left for the next pull: the mirrors matter more
            log.warning("%s: cannot remove what an interrupted clone left (%s): %s", policy.name,
                        ", ".join(temporaries), error.strerror or error)
    projects = endpoint.list_projects()
    items, jobs, listed = [], [], set()
    for project in projects:
        path = f"{project.get('path_with_namespace') or ''}.git"
        listed.add(path)
        problem = check_relative_path(path)
        if problem:
            items.append(item(path.replace("\x00", "?"), "refused", f"unsafe name: {problem}"))
            continue
        if dry_run:
            items.append(item(path, "to_update" if path in mirrors else "to_clone"))
            continue
        jobs.append((path, project, path in mirrors))

    def mirror(job):
        path, project, exists = job
        target = safe_target(root, path)
        if exists:
            endpoint.update_mirror(project, target)
            return "updated"
        if target.exists():
            raise UnsafePath(f"{path} exists here and is not a bare mirror")
        endpoint.clone_mirror(project, target)
        return "cloned"

    for (path, _, _), status, error in run_in_threads(mirror, jobs, concurrency, "mirror",
                                                    (EndpointError, UnsafePath)):
        items.append(item(path, status) if error is None else item(path, *failure(error)))
    local_only = sorted(path for path in mirrors if path not in listed)
    items += handle_local_only(policy, db, local_only, bool(listed), delete, dry_run)
    return items
