"""restore: bring a dataset (or part of it) back from a snapshot to a path.

Everything is restored into a staging directory beside the target and checked
against the snapshot's manifest before anything touches the target, so a failed or
interrupted restore leaves the target as it was.
"""

import logging
import os
import shutil
import stat
from contextlib import nullcontext
from pathlib import Path

from syncer.actions.common import quarantine_folder, recorded_run, watch_restic_memory
from syncer.actions.hooks import with_hooks
from syncer.actions.offsite import (
    MANIFEST_NAME,
    check_files,
    clear_stale_locks,
    expected_digest,
    fetch_manifest,
    find_snapshot,
    is_escaping,
    manifest_copy,
    open_repository,
    require_offsite,
)
from syncer.errors import EXIT_FINDINGS, EXIT_OK, OperationalError, SyncerError, UsageError
from syncer.fsio import (
    describe_interrupted_swap,
    find_escaping_link,
    find_special_file,
    interrupted_swaps,
    write_file,
)
from syncer.index.hashing import hash_file
from syncer.index.lock import dataset_lock
from syncer.log import plural
from syncer.process import process_exists
from syncer.restic.argv import escape_glob
from syncer.restic.repository import restore_summary
from syncer.verdict import Copy, judge

log = logging.getLogger("syncer.restore")
FAILURES_SHOWN = 20
STORE_PREFIX = "restore-manifest-"


class RestoreRefused(Exception):
    """The snapshot's content cannot be restored safely or does not match its
    manifest. A finding, reported in the result, not an error."""


def run_restore(policy, db, target, snapshot="latest", includes=(), force=False, in_place=False):
    """Restore `policy`'s dataset from `snapshot` to `target`, between the policy's
    restore hooks. Return the report; see restore_snapshot."""
    return with_hooks(policy, "restore",
                      lambda: restore_snapshot(policy, db, target, snapshot, includes, force, in_place))


def restore_snapshot(policy, db, target, snapshot="latest", includes=(), force=False, in_place=False):
    """Restore `policy`'s dataset from `snapshot` ("latest", an ID prefix, or a snapshot
    object restic listed) to `target`. Return the report; when a
    name would escape the target or a restored file does not match the manifest, it
    says why under "error", with exit code 1.

    Raise UsageError when the target is not empty and neither `force` (replace it) nor
    `in_place` (write only missing or damaged files) is given; OperationalError
    (restic, a full disk) otherwise. The target is untouched unless the restore
    succeeded. A target that is a symlink is followed (resolve_target).
    """
    require_offsite(policy)
    if force and in_place:
        raise UsageError("--force and --in-place exclude each other")
    target = resolve_target(Path(target).absolute())
    left_over = interrupted_swaps(target)
    for old in left_over:
        log.warning("%s: %s", policy.name, describe_interrupted_swap(target, old))
    if target.exists() and not target.is_dir():
        raise UsageError(f"restore target {target} exists and is not a directory")
    fresh_disk_entry = "lost+found" if target.is_dir() and os.path.ismount(target) else None
    if is_non_empty(target, ignore=fresh_disk_entry) and not (force or in_place):
        raise UsageError(f"restore target {target} is not empty; use --force to replace it "
                         f"or --in-place to write only missing or damaged files")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Restoring over the dataset itself: keep a timer's verify or push out meanwhile.
    guard = dataset_lock(db.state_dir, policy.name) if same_path(target, policy.path) else nullcontext()
    with guard, recorded_run(db, policy.name, "restore") as outcome:
        repository = open_repository(policy, db.state_dir)
        clear_stale_locks(repository, db, policy.name)
        # recover hands the snapshot it listed already: one restic run less per dataset
        chosen = snapshot if isinstance(snapshot, dict) else find_snapshot(repository, policy, snapshot)
        staging = staging_directory(target)
        remove_stale_staging(staging)
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.mkdir(mode=0o700)
        except OSError as error:
            raise OperationalError(f"cannot create the staging directory {staging}: {error.strerror}")
        # The manifest's index lives in the state directory: never inside the staging tree
        # (a dataset at / is restored to the staging folder itself), never in a tmpfs /tmp.
        entries = None
        try:
            try:
                remove_stale_stores(db.state_dir)
                root, entries = fetch_manifest(repository, chosen, policy.name, staging,
                                               db.state_dir / f"{STORE_PREFIX}{os.getpid()}.sqlite")
                (staging / MANIFEST_NAME).unlink()
                patterns = [restic_include(root, pattern) for pattern in includes] or [escape_glob(root)]
                log.info("%s: restoring snapshot %s into %s", policy.name, chosen["short_id"], staging)
                restored = restore_summary(repository.restore(chosen["id"], staging, patterns))
            except OperationalError as error:
                raise OperationalError(f"restore of {policy.name} into {staging.parent} failed; the target was "
                                       f"not touched: {error}")
            except OSError as error:  # writing the manifest: a full or read-only disk
                raise OperationalError(f"restore of {policy.name} into {staging.parent} failed; the target was "
                                       f"not touched: {error.strerror}")
            restored_root = staging / root.lstrip("/")
            restored_root.mkdir(parents=True, exist_ok=True)
            refuse_escaping(restored_root)
            checked, unverified = check_restored(restored_root, entries, require_all=not includes)
            if includes and not checked and not unverified:
                raise RestoreRefused(f"--include {' '.join(includes)} matches no file of snapshot "
                                     f"{chosen['short_id']} of {policy.name}: nothing was restored (the patterns "
                                     f"are relative to the dataset, like photos/2019/** or *.jpg)")
            log.info("%s: %d files match the snapshot's manifest", policy.name, checked)
            keep = quarantine_folder(db.state_dir, policy.name)
            written, replaced = move_into_place(restored_root, target, entries, force, in_place, keep)
        except RestoreRefused as refusal:
            log.error("%s: %s", policy.name, refusal)
            outcome.update(name=policy.name, snapshot=chosen["id"], target=str(target), error=str(refusal),
                           exit_code=EXIT_FINDINGS)
        else:
            outcome.update(name=policy.name, snapshot=chosen["id"], target=str(target), files_checked=checked,
                           unverified=unverified, files_written=written,
                           mode="in-place" if in_place else "replace" if force else "new",
                           restic_summary=restored, exit_code=EXIT_OK)
            if left_over:  # never deleted by syncer: the user's data until they say otherwise
                outcome.update(left_by_killed_restore=left_over)
            if replaced:
                outcome.update(files_replaced=replaced, replaced_kept_in=str(keep))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            if entries is not None:
                entries.close()
        outcome.update(restic_peak_rss_bytes=repository.peak_rss)
    watch_restic_memory(db, policy.name, "restore", repository.peak_rss)
    return dict(outcome)


def resolve_target(target):
    """Return the folder to restore into. A target that is a symlink (a dataset on a
    data disk) is followed deliberately: the folder it points to is restored, and the
    staging directory made beside that folder, on the same disk. Raise UsageError when
    the link leads to nothing or to something that is not a folder."""
    if not target.is_symlink():
        return target
    real = Path(os.path.realpath(target))
    if not real.is_dir():
        raise UsageError(f"restore target {target} is a symlink to {real}, which is not an existing directory")
    log.info("restore target %s is a symlink: restoring into %s, where it points", target, real)
    return real


def same_path(first, second):
    try:
        return os.path.realpath(first) == os.path.realpath(second)
    except OSError:
        return False


def staging_directory(target):
    """Where to restore first: beside the target, so the final move is a rename on
    one filesystem; inside it when the target is a mount point (a fresh disk)."""
    if target.is_dir() and os.path.ismount(target):
        return target / f".syncer-restore-{os.getpid()}"
    return target.parent / f".{target.name}.syncer-restore-{os.getpid()}"


def remove_stale_stores(state_dir):
    """Remove the manifest indexes that killed restores left in `state_dir`."""
    for entry in state_dir.glob(f"{STORE_PREFIX}*.sqlite"):
        pid = entry.name[len(STORE_PREFIX):-len(".sqlite")]
        if pid.isdigit() and int(pid) != os.getpid() and not process_exists(int(pid)):
            entry.unlink(missing_ok=True)


def remove_stale_staging(staging):
    """Remove the staging directories that killed restores left beside `staging` (same
    name, another PID that no longer runs): each can hold a whole dataset."""
    prefix = staging.name.rsplit("-", 1)[0] + "-"
    for entry in staging.parent.glob(f"{prefix}*"):
        pid = entry.name[len(prefix):]
        if pid.isdigit() and int(pid) != os.getpid() and not process_exists(int(pid)):
            log.info("removing %s, left by an interrupted restore", entry)
            shutil.rmtree(entry, ignore_errors=True)


def is_non_empty(path, ignore=None):
    try:
        with os.scandir(path) as entries:
            return any(entry.name != ignore for entry in entries)
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        return True


def restic_include(root, pattern):
    """Turn a --include glob relative to the dataset into a restic pattern on the
    snapshot's absolute paths."""
    if is_escaping(pattern.strip("/")) and pattern.strip("/") not in ("*", "**"):
        raise UsageError(f"--include {pattern!r} escapes the dataset")
    return f"{escape_glob(root.rstrip('/'))}/{pattern.lstrip('/')}"


def refuse_escaping(root):
    """Raise RestoreRefused if any restored symlink, chains of links included, resolves
    outside `root` (syncer.fsio.find_escaping_link), or a device node, FIFO or socket was
    restored (find_special_file)."""
    found = find_escaping_link(root)
    if found:
        relative, link = found
        raise RestoreRefused(f"the snapshot holds {relative!r}, a symlink pointing outside the dataset "
                             f"({link!r}); refusing to restore, the target was not touched")
    special = find_special_file(root)
    if special:
        relative, kind = special
        raise RestoreRefused(f"the snapshot holds {relative!r}, {kind}; refusing to restore, the target was "
                             f"not touched")


def check_restored(root, entries, require_all=True):
    """Check every restored regular file under `root` against the manifest `entries`
    (a ManifestStore), streaming both.

    Return (files checked, unverified [(path, reason)]). Raise RestoreRefused listing
    the files that differ, and (with `require_all`) those the manifest has but the
    restore lacks.
    """
    unverified = [(path, "not in the snapshot's manifest") for path, _ in walk_files(root) if path not in entries]
    if require_all:
        wanted = entries.files()
    else:
        wanted = (entry for entry in map(entries.get, (path for path, _ in walk_files(root))) if entry)
    failures, checked = [], 0
    for entry, (status, reason, _, _) in check_files(root, wanted, entries.algorithms()):
        if status == "ok":
            checked += 1
        else:
            (unverified if status == "unverified" else failures).append((entry["path"], reason))
    if failures:
        shown = "; ".join(f"{path}: {reason}" for path, reason in sorted(failures)[:FAILURES_SHOWN])
        more = f" (and {len(failures) - FAILURES_SHOWN} more)" if len(failures) > FAILURES_SHOWN else ""
        raise RestoreRefused(f"{plural(len(failures), 'restored file')} {'does' if len(failures) == 1 else 'do'} not "
                             f"match the snapshot's manifest; the target was not touched: {shown}{more}")
    return checked, unverified


def walk_files(root):
    """Yield (relative '/' path, absolute path) of regular files below `root`."""
    for directory, names, files in os.walk(root):
        names.sort()
        for name in sorted(files):
            path = os.path.join(directory, name)
            if os.path.isfile(path) and not os.path.islink(path):
                yield os.path.relpath(path, root).replace(os.sep, "/"), path


def move_into_place(restored, target, entries, force, in_place, keep):
    """Put the checked tree `restored` at `target`. Return (files written, files
    replaced); with `in_place`, the replaced files are kept in the folder `keep`."""
    if in_place and target.exists():
        return merge_in_place(restored, target, entries, keep)
    count = sum(1 for _ in walk_files(restored))
    if target.is_dir() and os.path.ismount(target):
        # A mount point cannot be renamed: empty it (--force) and move the entries in.
        staging_name = restored.relative_to(target).parts[0]
        for entry in os.scandir(target):
            if entry.name not in (staging_name, "lost+found"):
                remove(Path(entry.path))
        for entry in os.scandir(restored):
            os.rename(entry.path, target / entry.name)
        return count, 0
    if target.exists() and is_non_empty(target):
        # --force: swap, then delete the old tree; both renames stay on one filesystem.
        old = target.parent / f".{target.name}.syncer-old-{os.getpid()}"
        os.rename(target, old)
        os.rename(restored, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        if target.exists():
            target.rmdir()
        os.rename(restored, target)
    return count, 0


def remove(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def merge_in_place(restored, target, entries, keep):
    """Write into `target` only the files that are missing there or differ from the
    manifest, keeping each file replaced in the folder `keep`; leave everything else
    alone. Return (files written, files replaced).

    Every destination is checked before the first write, so a target that cannot take
    the restore (a folder where the snapshot has a file, a symlinked folder) is left
    untouched: raise UsageError then. Raise OperationalError, saying how much was
    already written, when a write fails part way.
    """
    problems = {}
    for relative, _ in walk_files(restored):  # every destination first; the plan is walked again below
        problem = in_place_problem(target, relative)
        if problem:
            problems.setdefault(*problem)
    if problems:
        shown = "; ".join(f"{where} {why}" for where, why in sorted(problems.items())[:FAILURES_SHOWN])
        more = f" (and {len(problems) - FAILURES_SHOWN} more)" if len(problems) > FAILURES_SHOWN else ""
        raise UsageError(f"--in-place: nothing was written into {target}; move these away first: {shown}{more}")
    written = replaced = 0
    for relative, path in walk_files(restored):
        destination = target / relative
        entry = entries.get(relative)
        exists = destination.exists()
        if exists and entry and matches(destination, entry):
            continue
        algorithm, digest = expected_digest(entry) if entry else (None, None)
        info = os.stat(path)
        try:
            write_file(target, relative, lambda path=path: open(path, "rb"),
                       expected={algorithm: digest} if algorithm else None, mode=stat.S_IMODE(info.st_mode),
                       mtime_ns=info.st_mtime_ns, keep_replaced=keep)
        except (OSError, SyncerError) as error:
            kept = f"; the {replaced} replaced are kept in {keep}" if replaced else ""
            reason = getattr(error, "strerror", None) or error
            raise OperationalError(f"--in-place: {relative} could not be written ({reason}); {written} file(s) "
                                   f"were already written into {target}{kept}")
        written += 1
        replaced += exists
    if replaced:
        log.info("kept the %d file(s) --in-place replaced in %s", replaced, keep)
    return written, replaced


def in_place_problem(target, relative):
    """Return (path, why) when `relative` cannot be written below `target` without
    going through a symlink or replacing something that is not a regular file, else None."""
    current = target
    parts = relative.split("/")
    for index, part in enumerate(parts):
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(mode):
            return str(current), "is a symlink"
        if index < len(parts) - 1 and not stat.S_ISDIR(mode):
            return str(current), "is not a directory (the snapshot has a folder there)"
        if index == len(parts) - 1 and not stat.S_ISREG(mode):
            return str(current), "is not a regular file (the snapshot has a file there)"
    return None


def matches(path, entry):
    algorithm, _ = expected_digest(entry)
    if algorithm is None or path.stat().st_size != entry.get("size"):  # nothing proves it, or plainly not
        return False
    hashed = hash_file(path, (algorithm,))
    return judge(manifest_copy(entry), Copy(hashed.size, hashed.digests)).ok
