"""Changes reported by the file watcher: mark index rows dirty, and bring just those
paths up to date, so k changed files cost O(k) instead of a walk and re-hash of the tree.

A dirty row is re-hashed by the next scan even when its (device, inode, size, mtime,
ctime) looks unchanged (a writer that restores mtime cannot hide a change).
"""

import logging
import os
import stat
import time

from syncer.index.db import LOCAL
from syncer.index.exclude import compile_excludes
from syncer.index.hashing import HashPool
from syncer.index.scan import DIGEST_COLUMNS, Recorder, ScanJob, ScanStats, is_usable_name

log = logging.getLogger("syncer.scan")
ROW_SQL = ("SELECT size, mtime_ns, ctime_ns, dev, ino, md5, sha256, dirty FROM files "
           "WHERE dataset=? AND side=? AND path=?")
# '/' is followed by '0' in code point order, so [path + '/', path + '0') holds exactly the
# paths below `path`: a range the primary key answers without a table scan.
BELOW_SQL = "dataset=? AND side=? AND path >= ? AND path < ?"


def below(path):
    return path + "/", path + "0"


def mark_changed(db, dataset, paths, side=LOCAL):
    """Mark the index rows of `paths`, and of everything below any that is a directory,
    dirty. Paths not in the index need no mark: any scan hashes a new file."""
    with db.transaction():
        for path in paths:
            # Two statements, not one with OR: each is a primary-key lookup or range.
            db.execute("UPDATE files SET dirty=1 WHERE dataset=? AND side=? AND path=?", (dataset, side, path))
            db.execute(f"UPDATE files SET dirty=1 WHERE {BELOW_SQL}", (dataset, side, *below(path)))


def count_dirty(db, dataset, side=LOCAL):
    return db.execute("SELECT COUNT(*) FROM files WHERE dataset=? AND side=? AND dirty=1",
                      (dataset, side)).fetchone()[0]


def is_current(row, info, algorithms):
    if row is None or row[7]:
        return False
    if row[:5] != (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_dev, info.st_ino):
        return False
    return all(row[DIGEST_COLUMNS[name]] for name in algorithms)


def refresh_paths(db, dataset, root, paths, exclude=(), algorithms=("sha256",), side=LOCAL):
    """Bring the index rows of `paths` (relative to `root`) up to date, and nothing else.

    A path that is gone loses its row and the rows below it; a directory (one moved in,
    say) is walked; a file is hashed unless its row is current and clean. Return
    ScanStats counting only what was looked at.
    """
    started = time.monotonic()
    root = os.fspath(root)
    is_excluded = compile_excludes(exclude)
    stats = ScanStats()
    gone = []
    record = Recorder(db, ScanJob(dataset, side, root, tuple(exclude), tuple(algorithms)), stats)

    with HashPool(algorithms) as pool:
        for path in files_to_examine(root, sorted(set(paths)), is_excluded, stats, gone):
            info = os.lstat(os.path.join(root, path))
            stats.files += 1
            stats.bytes += info.st_size
            row = db.execute(ROW_SQL, (dataset, side, path)).fetchone()
            if is_current(row, info, algorithms):
                continue
            if row and (row[0], row[1], row[3], row[4]) == (info.st_size, info.st_mtime_ns, info.st_dev, info.st_ino):
                record.suspects.add(path)  # the same file with the same size and mtime
            for done in pool.submit(path, os.path.join(root, path), info.st_size, info):
                record(*done)
        for done in pool.drain():
            record(*done)
    with db.transaction():
        for path in gone:
            for sql, parameters in (("dataset=? AND side=? AND path=?", (dataset, side, path)),
                                    (BELOW_SQL, (dataset, side, *below(path)))):
                stats.removed += max(db.execute(f"DELETE FROM files WHERE {sql}", parameters).rowcount, 0)
    record.flush()
    stats.seconds = time.monotonic() - started
    log.debug("refreshed %d changed path(s) of %s: %d hashed", len(paths), dataset, stats.hashed)
    return stats


def files_to_examine(root, paths, is_excluded, stats, gone):
    """Yield the regular files among `paths` and below those that are directories;
    append to `gone` the paths that no longer exist (or are no longer files)."""
    for path in paths:
        if not path or path.startswith("/") or ".." in path.split("/") or is_excluded(path):
            continue
        try:
            info = os.lstat(os.path.join(root, path))
        except FileNotFoundError:
            gone.append(path)
            continue
        except OSError as error:
            stats.skipped.append((path, f"cannot be examined: {error.strerror}"))
            continue
        if stat.S_ISREG(info.st_mode):
            yield path
        elif stat.S_ISDIR(info.st_mode):
            yield from walk_directory(root, path, is_excluded, stats)
        else:
            gone.append(path)
            stats.skipped.append((path, "symlink, not compared" if stat.S_ISLNK(info.st_mode)
                                  else "special file, not compared"))


def walk_directory(root, relative, is_excluded, stats):
    stack = [relative]
    while stack:
        directory = stack.pop()
        try:
            entries = sorted(os.scandir(os.path.join(root, directory)), key=lambda entry: entry.name)
        except OSError as error:
            stats.skipped.append((directory, f"directory cannot be read: {error.strerror}"))
            continue
        for entry in entries:
            path = f"{directory}/{entry.name}"
            if not is_usable_name(entry.name) or is_excluded(path):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(path)
            elif entry.is_file(follow_symlinks=False):
                yield path
