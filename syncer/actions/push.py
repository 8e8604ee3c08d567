"""push: back a dataset up to its offsite restic repository, with its manifest,
then apply retention (and prune when it is due), then copy to offsite.copies."""

import json
import logging
import time

from syncer.actions.common import for_each_dataset, recorded_run, require_on_this_machine, watch_restic_memory
from syncer.actions.copies import copy_to_copies
from syncer.actions.offsite import (
    clear_stale_locks,
    manifest_directory,
    open_repository,
    require_offsite,
    write_manifest,
    write_policy_copy,
)
from syncer.endpoints.factory import checksum_algorithm
from syncer.errors import EXIT_FINDINGS, EXIT_OK
from syncer.index.db import LOCAL
from syncer.index.lock import dataset_lock
from syncer.index.scan import scan_tree
from syncer.log import plural
from syncer.restic.argv import dataset_tag, restic_excludes
from syncer.restic.runner import RepositoryMissing

log = logging.getLogger("syncer.push")
PRUNE_INTERVALS = {"always": 0, "daily": 86400, "weekly": 7 * 86400, "monthly": 30 * 86400}
UNREADABLE_SHOWN = 50


def run_push(policies, db, progress=None, init=False, skip_if_unchanged=False):
    """Push each policy's dataset, then copy its snapshots to offsite.copies. Return the
    report: exit 1 when restic could not read some files (the snapshot exists without
    them) or a copy failed (the push stands), 3 when a push failed.
    With `init`, a missing repository is created even if syncer pushed to it before.
    With `skip_if_unchanged` (a push the watcher triggered), a dataset where nothing
    changed gets no new snapshot, on restic versions that can tell."""
    def work(policy):
        require_offsite(policy)
        with dataset_lock(db.state_dir, policy.name):
            return push_dataset(policy, db, progress, init, skip_if_unchanged)

    return for_each_dataset(policies, work, action="push")


def push_dataset(policy, db, progress=None, init=False, skip_if_unchanged=False):
    with recorded_run(db, policy.name, "push") as outcome:
        require_on_this_machine(policy, "path", "offsite")
        repository = open_repository(policy, db.state_dir)
        clear_stale_locks(repository, db, policy.name)
        log.info("%s: indexing %s for the manifest", policy.name, policy.path)
        # the digest verify keeps, so the index is refreshed without re-hashing under another algorithm
        algorithm = checksum_algorithm(policy.authority.type)
        stats = scan_tree(db, policy.name, LOCAL, policy.path, policy.exclude, (algorithm,))
        manifest, files, size = write_manifest(db, policy, manifest_directory(policy))
        log.info("%s: manifest of %d files (%.1f MiB) in %s", policy.name, files, size / 2**20, manifest)
        write_policy_copy(policy, manifest.parent)
        tag, host = dataset_tag(policy.name), policy.restic_host
        paths = [policy.path, manifest.parent]
        excludes = restic_excludes(policy.path, policy.exclude)
        on_status = progress and (lambda status: progress(policy.name, status))
        log.info("%s: restic backup to %s (tag %s, host %s)", policy.name, repository.context.display, tag, host)
        try:
            result = repository.backup(paths, tag, host, excludes, on_status, skip_if_unchanged)
        except RepositoryMissing as missing:
            create_repository(repository, policy, db, init, missing)
            result = repository.backup(paths, tag, host, excludes, on_status, skip_if_unchanged)
        db.record_push(repository.context.display)
        summary = result.summary
        snapshot = summary.get("snapshot_id")
        if result.skipped:
            log.info("%s: nothing changed since the last snapshot: no new one (--skip-if-unchanged)", policy.name)
        else:
            log.info("%s: snapshot %s: %s new, %s changed files, %.1f MiB added in %.1fs", policy.name, snapshot,
                     summary.get("files_new"), summary.get("files_changed"),
                     (summary.get("data_added") or 0) / 2**20, summary.get("total_duration") or 0)
        for path, reason in result.unreadable[:UNREADABLE_SHOWN]:
            log.warning("%s: restic could not read %s (%s); it is not in the snapshot", policy.name, path, reason)
        retention = apply_retention(repository, policy, db, tag, host)
        newest_kept = retention.pop("snapshot_full_id", None)
        if newest_kept and (result.skipped or snapshot and newest_kept.startswith(snapshot)):
            full_id = newest_kept  # forget's output already named it: no extra restic call
        elif result.skipped:  # the newest snapshot still holds the dataset as it is
            newest = repository.snapshots(tag, host)
            full_id = newest[-1]["id"] if newest else None
        else:
            full_id = repository.cached_snapshot_id(snapshot) if snapshot else None
        copies = (copy_to_copies(policy, db, repository, manifest, tag, host, init, retention["pruned"],
                                 retention.get("retention_applied", True)) if policy.offsite.copies else [])
        findings = result.unreadable or not all(copy["ok"] for copy in copies)
        outcome.update(
            name=policy.name, repository=repository.context.display, snapshot=full_id, copies=copies,
            files=stats.files, bytes=stats.bytes, manifest_files=files,
            files_new=summary.get("files_new"), files_changed=summary.get("files_changed"),
            files_unmodified=summary.get("files_unmodified"), bytes_added=summary.get("data_added"),
            bytes_processed=summary.get("total_bytes_processed"),
            duration=None if result.skipped else summary.get("total_duration"), unchanged=result.skipped,
            unreadable=[{"path": path, "reason": reason} for path, reason in result.unreadable],
            **retention, restic_peak_rss_bytes=repository.peak_rss,
            exit_code=EXIT_FINDINGS if findings else EXIT_OK)
    watch_restic_memory(db, policy.name, "push", repository.peak_rss)
    return dict(outcome)


def create_repository(repository, policy, db, init, missing):
    """Create the missing repository (restic init) when that cannot hide a lost one:
    asked with `init`, or a first push to it. Raise `missing`, reworded, when syncer
    pushed to it before or the policy says it exists (a disk not mounted must never
    turn into a new, empty repository)."""
    address = repository.context.display
    if init:
        log.warning("%s: creating offsite repository %s (restic init, asked with --init)", policy.name, address)
    else:
        pushed = db.first_push(address)
        if pushed or policy.offsite.exists:
            why = (f"syncer first pushed to it on {time.strftime('%Y-%m-%d', time.localtime(pushed))}" if pushed
                   else f"{policy.file_label} says offsite.exists: true")
            raise type(missing)(f"offsite repository {address} is missing or not mounted ({why}); it is not created "
                                f"again. Mount it, or if it is lost for good, `syncer push --init {policy.name}` "
                                f"starts a new, empty one", missing.exit_status)
        log.warning("%s: offsite repository %s does not exist yet: creating it (restic init). syncer never pushed "
                    "to it from this state directory; if it should exist, it is missing or not mounted "
                    "(`offsite.exists: true` in the policy prevents this)", policy.name, address)
    repository.init()


def apply_retention(repository, policy, db, tag, host):
    """Forget this dataset's snapshots beyond offsite.retention when offsite.forget's
    interval has passed since it last ran (recorded as a "forget" run); prune when due.
    Return the report keys (and the full ID of the newest kept snapshot)."""
    retention = policy.offsite.retention
    if not retention:
        return {"forgotten": 0, "pruned": False}
    if not forget_due(policy, db):
        log.info("%s: retention not due (offsite.forget: %s)", policy.name, policy.offsite.forget)
        return {"forgotten": 0, "pruned": False, "retention_applied": False}
    with recorded_run(db, policy.name, "forget") as forgot:
        kept, removed = repository.forget(tag, host, retention)
        forgot.update(repository=repository.context.display, kept=len(kept), forgotten=len(removed))
    log.info("%s: retention kept %s, forgot %d", policy.name, plural(len(kept), "snapshot"), len(removed))
    report = {"kept": len(kept), "forgotten": len(removed), "pruned": False, "retention_applied": True}
    if kept:
        report["snapshot_full_id"] = max(kept, key=lambda snapshot: snapshot.get("time", ""))["id"]
    if prune_due(policy, db, len(removed)):
        log.info("%s: pruning unreferenced data (offsite.prune: %s)", policy.name, policy.offsite.prune)
        with recorded_run(db, policy.name, "prune") as pruned:
            repository.prune()
            pruned.update(repository=repository.context.display)
        report["pruned"] = True
    return report


def forget_due(policy, db, now=None):
    """Whether offsite.forget's interval has passed since retention last ran. A forget
    costs a restic run with the repository's lock, about as long as a small day's
    backup: once a day is plenty for retention counted in days."""
    interval = PRUNE_INTERVALS[policy.offsite.forget]
    last = db.last_run(policy.name, "forget", "ok")
    # a tenth of slack: yesterday's forget ran a few seconds later in the day than this push
    return last is None or (now or time.time()) - last["finished_at"] >= interval * 0.9


def prune_due(policy, db, removed_now, now=None):
    """Prune when offsite.prune's interval has passed since the last prune and some
    snapshot was forgotten since then (nothing to reclaim otherwise)."""
    interval = PRUNE_INTERVALS.get(policy.offsite.prune)
    if interval is None:
        return False
    now = now or time.time()
    last = db.last_run(policy.name, "prune", "ok")
    since = last["finished_at"] if last else 0
    if now - since < interval:
        return False
    if removed_now:
        return True
    rows = db.execute("SELECT summary FROM runs WHERE dataset=? AND action='push' AND started_at>? "
                      "AND summary LIKE '%\"forgotten\": %'", (policy.name, since)).fetchall()
    return any((json.loads(row[0]) or {}).get("forgotten") for row in rows if row[0])
