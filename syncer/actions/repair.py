"""repair: replace corrupt and missing local files with a copy proven good.

A good copy is one whose digest equals the digest the file is known to have had
(recorded by scrub) or, for a missing file, the authority's own checksum. Sources
are tried in order: the authority, then the offsite snapshots. Each replacement is
written to a temporary file beside the target, checked, fsynced and renamed over
it; the bad copy is kept in the state directory's quarantine folder.
"""

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from syncer.actions.common import for_each_dataset, recorded_run
from syncer.endpoints.base import entry_copy
from syncer.endpoints.factory import build_endpoint
from syncer.errors import EXIT_FINDINGS, EXIT_OK, SyncerError
from syncer.index import integrity
from syncer.index.db import LOCAL
from syncer.index.hashing import ALGORITHMS, Throttle, hash_file
from syncer.index.lock import dataset_lock
from syncer.verdict import CHANGED, Copy, judge

log = logging.getLogger("syncer.repair")
COPY_CHUNK = 1 << 20
TEMPORARY_PREFIX = ".syncer-repair-"


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
                    if replace_file(policy, db, path, wanted[path], open_stream, throttle, source_name):
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
                       unrecoverable=still_broken, exit_code=EXIT_FINDINGS if still_broken else EXIT_OK)
    return dict(outcome)


def remove_stale_temporaries(policy, wanted):
    """Delete what an interrupted repair left beside the files it was repairing."""
    for directory in {(policy.path / path).parent for path in wanted}:
        for stale in directory.glob(f"{TEMPORARY_PREFIX}*"):
            stale.unlink(missing_ok=True)


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


def replace_file(policy, db, path, want, open_stream, throttle, source_name):
    """Write a good copy of `path` from `open_stream()`; return True when it is in place.

    The bytes go to a temporary file beside the target and are hashed on the way; only
    when every known digest matches is the file fsynced and renamed over the target.
    """
    target = policy.path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=TEMPORARY_PREFIX)
    try:
        hashers = {name: ALGORITHMS[name]() for name in want["expected"]}
        with os.fdopen(descriptor, "wb") as out, open_stream() as stream:
            while chunk := stream.read(COPY_CHUNK):
                out.write(chunk)
                for hasher in hashers.values():
                    hasher.update(chunk)
                throttle.consume(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        found = Copy(digests={name: hasher.hexdigest() for name, hasher in hashers.items()})
        if not judge(Copy(digests=want["expected"]), found).ok:
            log.warning("%s: %s from %s does not match the known-good digest; not used", policy.name, path,
                        source_name)
            Path(temporary).unlink()
            return False
        if want["mtime_ns"]:
            os.utime(temporary, ns=(time.time_ns(), want["mtime_ns"]))
        if target.exists():
            quarantine(policy, db, path, target)
        os.replace(temporary, target)
        sync_directory(target.parent)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    refresh_index_row(db, policy, path, target, want)
    if want["kind"] == "corrupt":
        integrity.resolve_corruption(db, policy.name, path, f"repaired from {source_name}")
    log.info("%s: repaired %s from %s", policy.name, path, source_name)
    return True


def quarantine(policy, db, path, target):
    """Keep the bad copy under the state directory, never just delete it."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    destination = Path(db.state_dir) / "quarantine" / policy.name / stamp / path
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(target, destination)
    except OSError:
        shutil.copy2(target, destination)


def sync_directory(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def refresh_index_row(db, policy, path, target, want):
    hashed = hash_file(target, tuple(want["expected"]))
    with db.transaction():
        db.upsert_files(policy.name, LOCAL, [{
            "path": path, "size": hashed.size, "mtime_ns": hashed.mtime_ns, "ctime_ns": hashed.ctime_ns,
            "dev": hashed.dev, "ino": hashed.ino, "hashed_at": time.time(), **hashed.digests}])
