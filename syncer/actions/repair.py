"""repair: replace corrupt and missing local files with a copy proven good.

A good copy is one whose digest equals the digest the file is known to have had
(recorded by scrub) or, for a missing file, the authority's own checksum. Sources
are tried in order: the authority, then the offsite snapshots. Each replacement is
written by syncer.fsio.write_file (checked, fsynced, renamed over the target, never
through a symlink); the bad copy is kept in the state directory's quarantine folder.
"""

import logging
import os
import time

from syncer.actions.common import for_each_dataset, quarantine_folder, recorded_run, require_on_this_machine
from syncer.endpoints.base import entry_copy
from syncer.endpoints.factory import build_endpoint
from syncer.errors import EXIT_FINDINGS, EXIT_OK, SyncerError
from syncer.fsio import DigestMismatch, UnsafePath, remove_temporaries, write_file
from syncer.index import integrity
from syncer.index.db import LOCAL, parent_of
from syncer.index.hashing import Throttle
from syncer.index.lock import dataset_lock
from syncer.verdict import CHANGED, Copy, judge

log = logging.getLogger("syncer.repair")


def run_repair(policies, db, dry_run=False, rate_mib_s=None, offsite_source=None):
    """Repair each dataset. Return the report: exit 1 when something stays broken.

    `offsite_source(policy, db, wanted)` may yield (path, open_stream) for files
    found in offsite snapshots; it is tried for what the authority cannot supply.
    """
    def work(policy):
        rate = rate_mib_s if rate_mib_s is not None else policy.scrub.rate_mib_s
        with dataset_lock(db.state_dir, policy.name):
            return repair_dataset(policy, db, dry_run, rate, offsite_source)

    return for_each_dataset(policies, work, action="repair", dry_run=dry_run)


def wanted_files(policy, db):
    """Return {path: {"expected": {algorithm: hex}, "kind": "corrupt"|"missing", ...}}."""
    wanted = {}
    for record in integrity.open_corruptions(db, policy.name):
        expected = {name: record[f"expected_{name}"] for name in ("md5", "sha256") if record[f"expected_{name}"]}
        wanted[record["path"]] = {"kind": "corrupt", "expected": expected, "size": record["size"],
                                  "mtime_ns": record["mtime_ns"]}
    for path, md5, sha256, size in integrity.missing_with_authority_digests(db, policy.name):
        expected = {name: digest for name, digest in (("md5", md5), ("sha256", sha256)) if digest}
        if expected and not (policy.path / path).exists():
            wanted[path] = {"kind": "missing", "expected": expected, "size": size, "mtime_ns": None}
    return wanted


def repair_dataset(policy, db, dry_run=False, rate_mib_s=None, offsite_source=None):
    with recorded_run(db, policy.name, "repair") as outcome:
        require_on_this_machine(policy, "path")
        wanted = wanted_files(policy, db)
        remove_stale_temporaries(policy, wanted)
        items, still_broken = [], 0
        for path, want in list(wanted.items()):
            if want["kind"] == "corrupt" and edited_since(policy.path / path, want):
                integrity.resolve_corruption(db, policy.name, path, "edited")
                items.append({"path": path, "status": "skipped", "reason": "edited since the scrub; not repaired"})
                del wanted[path]
        sources = [("authority", lambda wanted: authority_copies(policy, wanted))]
        if offsite_source:
            sources.append(("offsite", lambda wanted: offsite_source(policy, db, wanted)))
        throttle = Throttle(rate_mib_s)
        keep = quarantine_folder(db.state_dir, policy.name)
        for source_name, source in sources:
            if not wanted:
                break
            try:
                candidates = source(dict(wanted))
                for path, open_stream in candidates:
                    if path not in wanted:
                        continue
                    if dry_run:
                        items.append({"path": path, "status": "would_repair", "source": source_name})
                        del wanted[path]
                        continue
                    try:
                        replaced = replace_file(policy, db, path, wanted[path], open_stream, throttle, source_name,
                                                keep)
                    except UnsafePath as error:
                        still_broken += 1
                        items.append({"path": path, "status": "refused", "kind": wanted.pop(path)["kind"],
                                      "reason": str(error)})
                        log.error("%s: %s: %s", policy.name, path, error)
                        continue
                    if replaced:
                        items.append({"path": path, "status": "repaired", "source": source_name,
                                      "kind": wanted[path]["kind"]})
                        del wanted[path]
            except SyncerError as error:
                log.warning("%s: %s could not supply good copies: %s", policy.name, source_name, error)
        for path, want in sorted(wanted.items()):
            still_broken += 1
            items.append({"path": path, "status": "unrecoverable", "kind": want["kind"],
                          "reason": "no copy with the known-good digest at the authority or offsite"})
            if want["kind"] == "corrupt" and not dry_run:
                log.error("%s: %s: no good copy exists anywhere; the file is left as it is", policy.name, path)
        items.sort(key=lambda item: item["path"])
        outcome.update(name=policy.name, items=items, dry_run=dry_run,
                       repaired=sum(1 for item in items if item["status"] == "repaired"),
                       unrecoverable=sum(1 for item in items if item["status"] == "unrecoverable"),
                       refused=sum(1 for item in items if item["status"] == "refused"),
                       exit_code=EXIT_FINDINGS if still_broken else EXIT_OK)
    return dict(outcome)


def remove_stale_temporaries(policy, wanted):
    """Delete what an interrupted repair left beside the files it was repairing
    (syncer's temporary files only, recognised by their exact shape)."""
    for folder in sorted({parent_of(path) for path in wanted}):
        remove_temporaries(policy.path, folder)


def edited_since(path, want):
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return False
    return (info.st_size, info.st_mtime_ns) != (want["size"], want["mtime_ns"])


def authority_copies(policy, wanted):
    """Yield (path, open_stream) for wanted files the authority holds with a matching
    native checksum (or none to compare: the download is checked either way)."""
    endpoint = build_endpoint(policy)
    for entry in endpoint.list_entries():
        want = wanted.get(entry.path)
        if not want:
            continue
        if judge(Copy(digests=want["expected"]), entry_copy(entry)).status == CHANGED:
            log.info("%s: the authority's %s differs from the known-good digest", policy.name, entry.path)
            continue
        yield entry.path, (lambda entry=entry: endpoint.open_entry(entry))


def replace_file(policy, db, path, want, open_stream, throttle, source_name, keep):
    """Write a good copy of `path` from `open_stream()`; return True when it is in place.

    write_file hashes the bytes on the way; only when every known digest matches do
    they replace the target, whose bad copy is kept in the folder `keep`. Raise
    UnsafePath when the target cannot be reached without a symlink.
    """
    try:
        written = write_file(policy.path, path, open_stream, expected=want["expected"], mtime_ns=want["mtime_ns"],
                             keep_replaced=keep, on_chunk=throttle.consume)
    except DigestMismatch as error:
        log.warning("%s: %s from %s does not match the known-good digest (%s); not used", policy.name, path,
                    source_name, error)
        return False
    refresh_index_row(db, policy, path, written)
    if want["kind"] == "corrupt":
        integrity.resolve_corruption(db, policy.name, path, f"repaired from {source_name}")
    log.info("%s: repaired %s from %s", policy.name, path, source_name)
    return True


def refresh_index_row(db, policy, path, written):
    info = written.info
    with db.transaction():
        db.upsert_files(policy.name, LOCAL, [{
            "path": path, "size": info.st_size, "mtime_ns": info.st_mtime_ns, "ctime_ns": info.st_ctime_ns,
            "dev": info.st_dev, "ino": info.st_ino, "hashed_at": time.time(), **written.digests}])
