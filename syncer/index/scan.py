"""Bring the index of one directory tree up to date, hashing only what changed.

A file whose (device, inode, size, mtime_ns, ctime_ns) matches its index row, and
whose row already holds the digests asked for, is not read again (unless deep).
The tree is walked one directory at a time against that directory's rows, so
memory stays flat however large the dataset grows.
"""

import logging
import os
import time
from dataclasses import dataclass, field

from syncer.index.db import parent_of
from syncer.index.exclude import compile_excludes
from syncer.index.hashing import FileChanged, HashPool

log = logging.getLogger("syncer.scan")
FLUSH_EVERY = 1000
DIGEST_COLUMNS = {"md5": 5, "sha256": 6}  # positions in StateDB.rows_in_directory values


@dataclass
class ScanStats:
    files: int = 0
    bytes: int = 0
    hashed: int = 0
    hashed_bytes: int = 0
    removed: int = 0
    skipped: list = field(default_factory=list)  # (path, reason): not regular files or unusable names
    seconds: float = 0.0


def is_usable_name(name):
    """A name that is not valid UTF-8 cannot be stored or compared faithfully."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


def scan_tree(db, dataset, side, root, exclude=(), algorithms=("sha256",), deep=False, progress=None):
    """Update the index rows of `dataset`/`side` to match the tree at `root`.

    Hash new and changed files (every file with `deep`) with `algorithms`; drop rows
    of files that are gone. Return ScanStats. `progress(files_seen, bytes_hashed)`
    is called as work proceeds.
    """
    started = time.monotonic()
    root = os.fspath(root)
    is_excluded = compile_excludes(exclude) if exclude else None
    algorithms = tuple(algorithms)
    stats = ScanStats()
    pending, visited, stack = [], set(), [""]

    def record(path, result):
        if isinstance(result, FileChanged):
            pending.append({"path": path, "note": "kept changing while it was read"})
        elif isinstance(result, OSError):
            pending.append({"path": path, "note": f"cannot be read: {result.strerror}"})
        else:
            stats.hashed += 1
            stats.hashed_bytes += result.size
            pending.append({"path": path, "size": result.size, "mtime_ns": result.mtime_ns,
                            "ctime_ns": result.ctime_ns, "dev": result.dev, "ino": result.ino,
                            "hashed_at": time.time(), **result.digests})
        if len(pending) >= FLUSH_EVERY:
            flush()

    def flush():
        if pending:
            with db.transaction():
                db.upsert_files(dataset, side, pending)
            pending.clear()

    with HashPool(algorithms) as pool:
        while stack:
            relative = stack.pop()
            visited.add(relative)
            cached = db.cache_keys_in_directory(dataset, side, relative, algorithms)
            directories = walk_directory(root, relative, is_excluded, deep, cached, pool, record, stats)
            stack.extend(sorted(directories, reverse=True))
            if cached:  # indexed files no longer there (or no longer regular files)
                gone = [f"{relative}/{name}" if relative else name for name in cached]
                db.delete_paths(dataset, side, gone)
                stats.removed += len(gone)
            if progress:
                progress(stats.files, stats.hashed_bytes)
        for done in pool.drain():
            record(*done)
    flush()
    for parent in db.parents(dataset, side):
        if parent not in visited:
            db.delete_parent(dataset, side, parent)
    stats.seconds = time.monotonic() - started
    log.debug("scanned %s (%s): %d files, %d hashed (%d bytes) in %.2fs", root, side, stats.files,
              stats.hashed, stats.hashed_bytes, stats.seconds)
    return stats


def walk_directory(root, relative, is_excluded, deep, cached, pool, record, stats):
    """Examine one directory: queue its new and changed files on `pool`, popping from
    `cached` (StateDB.cache_keys_in_directory) every file still there. Return its
    subdirectories.

    This loop runs once per file of the tree, so it avoids per-file work it can: the
    directory is listed through a descriptor (stat then resolves one name, not the
    whole path), and a file's path is only built when it has to be hashed.
    """
    directories = []
    try:
        if relative:
            fd = os.open(os.path.join(root, relative), DIRECTORY_FLAGS | NO_FOLLOW)
        else:
            fd = os.open(root, DIRECTORY_FLAGS)
    except OSError as error:
        stats.skipped.append((relative or ".", f"directory cannot be read: {error.strerror}"))
        return directories
    files = size = 0
    pop = cached.pop
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                name = entry.name
                path = None
                if not name.isascii() and not is_usable_name(name):
                    path = f"{relative}/{name}" if relative else name
                    stats.skipped.append((os.fsencode(path).decode("utf-8", "replace"), "name is not UTF-8"))
                    continue
                if is_excluded is not None:
                    path = f"{relative}/{name}" if relative else name
                    if is_excluded(path):
                        continue
                try:
                    if entry.is_file(follow_symlinks=False):
                        info = entry.stat(follow_symlinks=False)
                        files += 1
                        size += info.st_size
                        if pop(name, None) == (name, info.st_size, info.st_mtime_ns, info.st_ctime_ns,
                                               info.st_dev, info.st_ino) and not deep:
                            continue
                        path = path or (f"{relative}/{name}" if relative else name)
                        for done in pool.submit(path, os.path.join(root, path)):
                            record(*done)
                    elif entry.is_dir(follow_symlinks=False):
                        directories.append(path or (f"{relative}/{name}" if relative else name))
                    else:
                        kind = "symlink" if entry.is_symlink() else "special file"
                        stats.skipped.append((path or (f"{relative}/{name}" if relative else name),
                                              f"{kind}, not compared"))
                except OSError as error:
                    stats.skipped.append((path or (f"{relative}/{name}" if relative else name),
                                          f"cannot be examined: {error.strerror}"))
    except OSError as error:
        stats.skipped.append((relative or ".", f"directory cannot be read: {error.strerror}"))
    finally:
        os.close(fd)
    stats.files += files
    stats.bytes += size
    return directories


__all__ = ["ScanStats", "scan_tree", "parent_of"]
