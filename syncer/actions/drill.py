"""drill: prove a restore works, from any machine with the policy's offsite settings.

Restore the manifest, then a sample that always holds the largest and the newest
files (or everything with --full) into a temporary directory; check each file
against the manifest; measure throughput and project the full-restore time.
"""

import logging
import random
import re
import shutil
import statistics
import tempfile
import time
from array import array
from pathlib import Path

from syncer.actions.common import for_each_dataset, recorded_run, watch_restic_memory
from syncer.actions.hooks import with_hooks
from syncer.actions.offsite import (
    MANIFEST_NAME,
    MANIFEST_STORE_NAME,
    check_files,
    clear_stale_locks,
    fetch_manifest,
    find_snapshot,
    load_manifest,
    open_repository,
    require_offsite,
    snapshot_layout,
)
from syncer.errors import EXIT_FINDINGS, EXIT_OK, OperationalError, UsageError
from syncer.index.db import AUTHORITY
from syncer.restic.argv import dataset_tag, escape_glob
from syncer.restic.repository import restore_summary
from syncer.restic.runner import ResticFailed
from syncer.verdict import CHANGED, Copy, judge

log = logging.getLogger("syncer.drill")
DEFAULT_SAMPLE = "16"
# The default sample is topped up to this many bytes (or the whole dataset): a few small
# files restore in restic's start-up time, and their rate says nothing.
DEFAULT_SAMPLE_BYTES = 64 * 2**20
# The projected full-restore time is the median over this many recent drills (each with
# enough bytes restored), shown with their spread: one drill's rate is noise.
PROJECTION_DRILLS = 5
SIZE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
SAMPLE_PATTERN = re.compile(r"^(\d+(?:\.\d+)?)(%|[KMGT]i?B?|B)?$", re.I)


def parse_sample(spec):
    """Parse --sample: "N" files, "P%" of the files, or a size ("500M", "2G").
    Return ("count"|"percent"|"bytes", number). Raise UsageError otherwise."""
    match = SAMPLE_PATTERN.match(str(spec).strip())
    if not match:
        raise UsageError(f"--sample {spec!r}: give a number of files (20), a percentage (5%) or a size (500M)")
    number, unit = float(match.group(1)), (match.group(2) or "").upper()
    if unit == "%":
        if not 0 < number <= 100:
            raise UsageError(f"--sample {spec!r}: a percentage must be above 0 and at most 100")
        return "percent", number
    if unit:
        return "bytes", int(number * SIZE_UNITS[unit[0] if unit[0] != "B" else ""])
    if number != int(number) or number < 1:
        raise UsageError(f"--sample {spec!r}: a number of files must be a whole number of at least 1")
    return "count", int(number)


def choose_sample(entries, spec, rng=None, min_bytes=0):
    """Return the manifest paths to restore, in path order: the largest and the newest
    file always, then random others until `spec` (from parse_sample) is met, and more
    until they hold at least `min_bytes`. `entries` is a ManifestStore; what is held
    per file while choosing is its size and position (two 8-byte array items), never
    its entry, so a million files cost 16 MB."""
    sizes, largest, newest = array("q"), None, None  # largest, newest: (key, position)
    for position, entry in enumerate(entries.files()):
        sizes.append(entry["size"])
        by_size, by_time = (entry["size"], entry["path"]), (entry.get("mtime_ns") or 0, entry["path"])
        if largest is None or by_size > largest[0]:
            largest = (by_size, position)
        if newest is None or by_time > newest[0]:
            newest = (by_time, position)
    if not sizes:
        return []
    rng = rng or random.Random()
    chosen = {largest[1], newest[1]}
    rest = array("q", (position for position in range(len(sizes)) if position not in chosen))
    rng.shuffle(rest)
    kind, amount = spec
    if kind in ("count", "percent"):
        wanted = max(amount, len(chosen)) if kind == "count" else max(1, round(len(sizes) * amount / 100))
        chosen.update(rest[:max(0, wanted - len(chosen))])
    else:
        budget = amount - sum(sizes[position] for position in chosen)
        for position in rest:
            if sizes[position] <= budget:
                chosen.add(position)
                budget -= sizes[position]
    missing = min_bytes - sum(sizes[position] for position in chosen)
    for position in rest:
        if missing <= 0:
            break
        if position not in chosen:
            chosen.add(position)
            missing -= sizes[position]
    return [entry["path"] for position, entry in enumerate(entries.files()) if position in chosen]


def run_drill(policy, db, sample=None, full=False, seed=None):
    """Drill a restore of `policy`'s dataset between its drill hooks. Return the
    report: exit 1 when a sampled file is missing or does not match the manifest."""
    return with_hooks(policy, "drill", lambda: drill_dataset(policy, db, sample, full, seed))


def run_drills(policies, db):
    """Drill every dataset with the default sample, as a schedule or `syncer job drill`
    does. Return the report; a dataset that fails does not stop the others."""
    return for_each_dataset(policies, lambda policy: dict(drill_dataset(policy, db), name=policy.name),
                            action="drill")


def drill_dataset(policy, db, sample=None, full=False, seed=None):
    """Restore a sample of `policy`'s dataset (everything with `full`) and check it
    against the manifest. Return the report; its exit_code is 1 on a failed file."""
    require_offsite(policy)
    spec = None if full else parse_sample(sample or DEFAULT_SAMPLE)
    min_bytes = 0 if sample else DEFAULT_SAMPLE_BYTES
    with recorded_run(db, policy.name, "drill") as outcome:
        repository = open_repository(policy, db.state_dir)
        clear_stale_locks(repository, db, policy.name)
        workspace = Path(tempfile.mkdtemp(prefix=f"syncer-drill-{policy.name}-"))
        failures, entries = [], None
        try:
            target = workspace / "restore"
            if full:
                snapshot_id, root, entries, seconds = restore_everything(repository, policy, target, workspace,
                                                                         failures)
                chosen, manifest_run = entries.files() if entries else (), None
            else:
                snapshot = find_snapshot(repository, policy)
                snapshot_id = snapshot["id"]
                root, entries, paths, seconds, manifest_run = restore_sample(
                    repository, snapshot, policy.name, workspace, target, spec, seed, failures, min_bytes)
                chosen = [entries.get(path) for path in paths]
            authority = authority_digests(db, policy.name)
            # --full lists only the files that are not ok: a million items would not fit a small board
            results, checked, restored_bytes, authority_checked, authority_differs = [], 0, 0, 0, []
            base = target / root.lstrip("/") if root else target
            algorithms = entries.algorithms() if entries else ()
            for entry, (status, reason, size, digests) in check_files(base, chosen, algorithms):
                path = entry["path"]
                checked += 1
                restored_bytes += size
                if not full or status != "ok":
                    results.append({"path": path, "size": entry["size"], "status": status})
                known = authority(path)
                authority_checked += known is not None
                if status == "failed":
                    failures.append({"path": path, "reason": reason})
                elif known is not None and judge(known, Copy(digests=digests)).status == CHANGED:
                    authority_differs.append(path)
                    failures.append({"path": path, "reason": "matches the manifest but differs from the authority "
                                                             "(its digest at this machine's last verify)"})
            dataset_files, dataset_bytes = (len(entries), entries.total_bytes()) if entries else (0, 0)
        finally:
            if entries is not None:
                entries.close()
            shutil.rmtree(workspace, ignore_errors=True)
        throughput, startup, _ = estimate_restore(seconds, restored_bytes, dataset_bytes, manifest_run)
        measured = throughput and {"rate": throughput * 2**20, "startup": startup, "bytes": restored_bytes,
                                   "dataset_bytes": dataset_bytes}
        projection = project_restore(measured, recent_drills(db, policy.name, PROJECTION_DRILLS - 1), dataset_bytes)
        for failure in failures:
            log.warning("%s: drill: %s: %s", policy.name, failure["path"], failure["reason"])
        log.info("%s: drill %s: %d files checked, %d failed; %.1f MiB restored at %s MiB/s", policy.name,
                 "failed" if failures else "passed", checked, len(failures), restored_bytes / 2**20,
                 f"{throughput:.1f}" if throughput else "-")
        outcome.update(
            dataset=policy.name, snapshot=snapshot_id, passed=not failures, files_checked=checked,
            bytes_restored=restored_bytes, failures=failures,
            throughput_mib_s=round(throughput, 2) if throughput else None,
            restore_rate_bytes_per_second=round(measured["rate"]) if measured else None,
            restic_startup_seconds=round(startup, 3) if startup is not None else None, **projection,
            dataset_files=dataset_files, dataset_bytes=dataset_bytes,
            restore_seconds=round(seconds, 3), full=full, items=results,
            authority={"checked": authority_checked, "differs": authority_differs},
            restic_peak_rss_bytes=repository.peak_rss, exit_code=EXIT_FINDINGS if failures else EXIT_OK)
    watch_restic_memory(db, policy.name, "drill", repository.peak_rss)
    report = dict(outcome)
    report.pop("seconds", None)
    return report


def restore_everything(repository, policy, target, workspace, failures):
    """Restore the newest snapshot whole (data and manifest) in one restic run, the
    way a raw `restic restore latest` would. Return (snapshot ID, root, entries (a
    ManifestStore in `workspace`, or None when the manifest cannot be read), restore
    seconds)."""
    started = time.monotonic()
    short_id = listed = None
    try:
        short_id, listed = repository.restore_latest(dataset_tag(policy.name), policy.restic_host, target)
    except ResticFailed as error:  # damaged data, or no snapshot: the checks below say which
        log.warning("%s: restic restore reported errors: %s", policy.name, error)
    seconds = time.monotonic() - started
    layout = find_layout(target, listed, policy.name) if listed else None
    if short_id and layout:
        snapshot_id = repository.cached_snapshot_id(short_id)
    else:
        snapshot = find_snapshot(repository, policy)
        snapshot_id, layout = snapshot["id"], snapshot_layout(snapshot, policy.name)
    root, manifest = layout
    try:
        entries = load_manifest(target / manifest.lstrip("/"), workspace / MANIFEST_STORE_NAME)
    except OperationalError as error:
        failures.append({"path": "(manifest)", "reason": str(error)})
        return snapshot_id, root, None, seconds
    log.info("%s: drilled snapshot %s: restored all %d manifest entries", policy.name, snapshot_id[:8], len(entries))
    return snapshot_id, root, entries, seconds


def find_layout(target, listed, dataset):
    """Given restic's "[path path]" text of a restored snapshot, return (root,
    manifest file) for the manifest directory found restored below `target`, or None."""
    for root, manifest_directory in split_snapshot_paths(listed, dataset):
        manifest = f"{manifest_directory}/{MANIFEST_NAME}"
        if (target / manifest.lstrip("/")).is_file():
            return root, manifest
    return None


def split_snapshot_paths(listed, dataset):
    """Return every (root, manifest directory) reading of restic's space-separated
    "root manifest-dir" (either order) where the manifest directory ends in
    /manifests/<dataset>; paths may hold spaces, so there can be several."""
    suffix = f"/manifests/{dataset}"
    readings = []
    for start in range(len(listed)):
        if listed[start] != "/" or (start and listed[start - 1] != " "):
            continue
        end = listed.find(suffix, start)
        while end != -1:
            stop = end + len(suffix)
            if stop == len(listed) or listed[stop] == " ":
                root = (listed[:start - 1] if start else listed[stop + 1:]).strip()
                if root.startswith("/") and (start == 0 or stop == len(listed)):
                    readings.append((root, listed[start:stop]))
            end = listed.find(suffix, end + 1)
    return readings


def restore_sample(repository, snapshot, dataset, workspace, target, spec, seed, failures, min_bytes=0):
    """Restore the manifest, then the sample `spec` of `snapshot` below `target`.
    Return (root, entries (a ManifestStore in `workspace`, or None when the manifest
    cannot be restored), chosen paths, restore seconds, (manifest seconds, bytes))."""
    root, _ = snapshot_layout(snapshot, dataset)
    started = time.monotonic()
    try:
        root, entries = fetch_manifest(repository, snapshot, dataset, workspace)
    except ResticFailed as error:
        failures.append({"path": "(manifest)", "reason": f"the manifest cannot be restored: {error}"})
        return root, None, [], 0.0, None
    manifest_run = (time.monotonic() - started, (workspace / MANIFEST_NAME).stat().st_size)
    try:
        chosen = choose_sample(entries, spec, random.Random(seed), min_bytes)
    except BaseException:
        entries.close()
        raise
    log.info("%s: drilling snapshot %s: restoring %d of %d files", dataset, snapshot["short_id"], len(chosen),
             len(entries))
    started = time.monotonic()
    if chosen:
        try:
            result = repository.restore(snapshot["id"], target,
                                        [escape_glob(f"{root.rstrip('/')}/{path}") for path in chosen])
            summary = restore_summary(result)
            if summary:
                log.info("%s: restic restored %s files, %.1f MiB", dataset, summary.get("files_restored"),
                         (summary.get("bytes_restored") or 0) / 2**20)
        except ResticFailed as error:  # damaged data: the per-file checks below say which
            log.warning("%s: restic restore reported errors: %s", dataset, error)
    return root, entries, chosen, time.monotonic() - started, manifest_run


def estimate_restore(seconds, restored_bytes, dataset_bytes, manifest_run=None):
    """Return (throughput in MiB/s, restic's fixed start-up in seconds, projected
    full-restore seconds), or Nones when nothing was restored.

    Each restic run pays a fixed start-up (opening the repository) before it moves
    data; with a small sample that would swamp the rate. Given the manifest's run
    (seconds, bytes) as a second point, fit seconds = start-up + bytes / rate, so the
    projection counts the start-up once. Without a usable second point, the whole
    time counts as transfer (a cautious projection).
    """
    if not restored_bytes or seconds <= 0:
        return None, None, None
    rate, startup = restored_bytes / seconds, 0.0
    if manifest_run:
        manifest_seconds, manifest_bytes = manifest_run
        if restored_bytes > manifest_bytes and seconds > manifest_seconds:
            fitted = (restored_bytes - manifest_bytes) / (seconds - manifest_seconds)
            fitted_startup = manifest_seconds - manifest_bytes / fitted
            if fitted_startup >= 0:
                rate, startup = fitted, fitted_startup
    return rate / 2**20, startup, startup + dataset_bytes / rate


def recent_drills(db, dataset, count):
    """Return the measurements {"rate", "startup", "bytes", "dataset_bytes"} of the last
    `count` completed drills of `dataset` recorded in the run history, newest first."""
    from syncer.index.runs import recent_completed_runs

    found = []
    for run in recent_completed_runs(db, dataset, "drill", count):
        summary = run["summary"]
        rate = summary.get("restore_rate_bytes_per_second") or (summary.get("throughput_mib_s") or 0) * 2**20
        if rate > 0 and summary.get("bytes_restored"):
            found.append({"rate": rate, "startup": summary.get("restic_startup_seconds") or 0.0,
                          "bytes": summary["bytes_restored"], "dataset_bytes": summary.get("dataset_bytes") or 0})
    return found


def enough_bytes(drill):
    """Whether a drill restored enough for its rate to mean something: the default
    sample's floor, or the whole dataset when that is smaller."""
    return drill["bytes"] >= min(DEFAULT_SAMPLE_BYTES, drill["dataset_bytes"])


def project_restore(measured, earlier, dataset_bytes):
    """Project the full-restore time of `dataset_bytes` from this drill's measurement
    (`measured`, or None) and `earlier` ones (newest first): the median and the spread
    (min, max) of each drill's start-up + bytes / rate, over the drills that restored
    enough bytes; from this drill alone, flagged, when none did. Return the report keys."""
    drills = ([measured] if measured else []) + list(earlier)
    used = [drill for drill in drills if enough_bytes(drill)] or drills[:1]
    if not used:
        return {"projected_restore_seconds": None, "projected_restore_range": None, "projection_drills": 0,
                "projection_enough_bytes": False}
    projections = sorted(drill["startup"] + dataset_bytes / drill["rate"] for drill in used)
    return {"projected_restore_seconds": round(statistics.median(projections), 1),
            "projected_restore_range": [round(projections[0], 1), round(projections[-1], 1)],
            "projection_drills": len(used), "projection_enough_bytes": enough_bytes(used[0])}


def authority_digests(db, dataset):
    """Return a lookup: path -> the digests (a Copy) the authority gave for it at the
    last verify on this machine, or None (always None on a laptop that never verified).
    Used as a second opinion only; one indexed query a file, so nothing is held."""
    if db.execute("SELECT 1 FROM files WHERE dataset=? AND side=? LIMIT 1", (dataset, AUTHORITY)).fetchone() is None:
        return lambda path: None

    def lookup(path):
        row = db.execute("SELECT md5, sha256 FROM files WHERE dataset=? AND side=? AND path=?",
                         (dataset, AUTHORITY, path)).fetchone()
        return Copy(digests={"md5": row[0], "sha256": row[1]}) if row and (row[0] or row[1]) else None

    return lookup
