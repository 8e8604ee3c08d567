"""Bring the index of one directory tree up to date, hashing only what changed.

A file whose (device, inode, size, mtime_ns, ctime_ns) matches its index row, and
whose row already holds the digests asked for, is not read again (unless deep).
The tree is walked one directory at a time against that directory's rows, so
memory stays flat however large the dataset grows.
"""

import json
import logging
import os
import selectors
import subprocess
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field

from syncer.errors import SyncerError
from syncer.index.db import StateDB, parent_of
from syncer.index.exclude import compile_excludes
from syncer.index.hashing import FileChanged, HashPool, default_workers
from syncer.verdict import CORRUPT, Copy, judge

log = logging.getLogger("syncer.scan")
FLUSH_EVERY = 1000
DIGEST_COLUMNS = {"md5": 5, "sha256": 6}  # positions in syncer.index.dirty.ROW_SQL rows


@dataclass
class ScanStats:
    files: int = 0
    bytes: int = 0
    hashed: int = 0
    hashed_bytes: int = 0
    removed: int = 0
    skipped: list = field(default_factory=list)  # (path, reason): not regular files or unusable names
    corrupt: list = field(default_factory=list)  # paths whose content changed under an unchanged size and mtime
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


@dataclass(frozen=True)
class ScanJob:
    """What to bring up to date: one side of one dataset, the tree at `root`."""

    dataset: str
    side: str
    root: str
    exclude: tuple = ()
    algorithms: tuple = ("sha256",)
    deep: bool = False


def scan_tree(db, dataset, side, root, exclude=(), algorithms=("sha256",), deep=False, progress=None):
    """Update the index rows of `dataset`/`side` to match the tree at `root`.

    Hash new and changed files (every file with `deep`) with `algorithms`; drop rows
    of files that are gone. Return ScanStats. `progress(files_seen, bytes_hashed)`
    is called as work proceeds.

    A large indexed tree is walked by one process per core (see scan_in_processes);
    should that fail, the walk is done again here, which is always safe.
    """
    started = time.monotonic()
    job = ScanJob(dataset, side, os.fspath(root), tuple(exclude or ()), tuple(algorithms), deep)
    result = None
    walkers = walker_count(db, job)
    if walkers > 1:
        try:
            result = scan_in_processes(db, job, walkers, progress)
        except WalkerError as error:
            log.warning("%s: walking in %d processes failed (%s); walking in this one", job.root, walkers, error)
    if result is None:
        result = ScanStats(), set()
        scan_directories(db, job, [""], *result, progress=progress)
    stats, visited = result
    for parent in db.parents(dataset, side):
        if parent not in visited:
            db.delete_parent(dataset, side, parent)
    stats.seconds = time.monotonic() - started
    log.debug("scanned %s (%s): %d files, %d hashed (%d bytes) in %.2fs", job.root, side, stats.files,
              stats.hashed, stats.hashed_bytes, stats.seconds)
    return stats


def scan_directories(db, job, starts, stats, visited, progress=None, workers=None, descend=True):
    """Bring the rows of the directories `starts` (relative paths), and with `descend`
    of everything below them, up to date; add to `stats` and `visited`. Return the
    subdirectories met but not descended into."""
    is_excluded = compile_excludes(job.exclude) if job.exclude else None
    left, stack = [], list(reversed(starts))
    record = Recorder(db, job, stats)

    with HashPool(job.algorithms, workers) as pool:
        while stack:
            relative = stack.pop()
            visited.add(relative)
            cached = db.cache_keys_in_directory(job.dataset, job.side, relative, job.algorithms)
            directories = walk_directory(job.root, relative, is_excluded, job.deep, cached, pool, record, stats,
                                         record.suspects)
            if descend:
                stack.extend(sorted(directories, reverse=True))
            else:
                left.extend(directories)
            if cached:  # indexed files no longer there (or no longer regular files)
                gone = [f"{relative}/{name}" if relative else name for name in cached]
                db.delete_paths(job.dataset, job.side, gone)
                stats.removed += len(gone)
            if progress:
                progress(stats.files, stats.hashed_bytes)
        for done in pool.drain():
            record(*done)
    record.flush()
    return left


class Recorder:
    """Turn hashing results into index rows of `job`, written in batches, counted in
    `stats`. A path in `suspects` was re-read under an unchanged size and mtime: if its
    content differs from the index, that is corruption (check_unchanged_content)."""

    def __init__(self, db, job, stats):
        self.db, self.job, self.stats = db, job, stats
        self.pending, self.suspects = [], set()

    def __call__(self, path, result):
        if path in self.suspects:
            self.suspects.discard(path)
            if not isinstance(result, Exception) and check_unchanged_content(self.db, self.job, path, result):
                self.stats.corrupt.append(path)
        # rows for StateDB.upsert_scanned: (path, size, mtime_ns, ctime_ns, dev, ino, md5, sha256, note, hashed_at)
        if isinstance(result, FileChanged):
            self.pending.append((path, None, None, None, None, None, None, None, "kept changing while it was read",
                                 None))
        elif isinstance(result, OSError):
            self.pending.append((path, None, None, None, None, None, None, None,
                                 f"cannot be read: {result.strerror}", None))
        else:
            self.stats.hashed += 1
            self.stats.hashed_bytes += result.size
            digests = result.digests
            self.pending.append((path, result.size, result.mtime_ns, result.ctime_ns, result.dev, result.ino,
                                 digests.get("md5"), digests.get("sha256"), None, time.time()))
        if len(self.pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self):
        if self.pending:
            with self.db.transaction():
                self.db.upsert_scanned(self.job.dataset, self.job.side, self.pending)
            self.pending.clear()


def check_unchanged_content(db, job, path, hashed):
    """A file re-read although its size and mtime did not move (its ctime or inode did,
    or --deep): if its content differs from the index, that is corruption, not an
    edit. Record it with the digests it should have; return True."""
    from syncer.index import integrity

    row = db.execute(f"SELECT size, mtime_ns, {', '.join(job.algorithms)} FROM files "
                     "WHERE dataset=? AND side=? AND path=?", (job.dataset, job.side, path)).fetchone()
    if row is None:
        return False
    expected = {name: digest for name, digest in zip(job.algorithms, row[2:]) if digest}
    if judge(Copy(row[0], expected, row[1]), Copy(hashed.size, hashed.digests, hashed.mtime_ns)).status != CORRUPT:
        return False
    log.error("%s: %s changed content under an unchanged size and mtime (bit rot or a bad write); "
              "`syncer repair` can restore it", job.dataset, path)
    if job.side == "local":
        integrity.record_corruption(db, job.dataset, path, hashed.size, hashed.mtime_ns, expected,
                                    {name: hashed.digests[name] for name in expected})
    return True


def walk_directory(root, relative, is_excluded, deep, cached, pool, record, stats, suspects=None):
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
                        known = pop(name, None)
                        if known == (name, info.st_size, info.st_mtime_ns, info.st_ctime_ns,
                                     info.st_dev, info.st_ino) and not deep:
                            continue
                        path = path or (f"{relative}/{name}" if relative else name)
                        if known and suspects is not None and known[1:3] == (info.st_size, info.st_mtime_ns) \
                                and known[4:] == (info.st_dev, info.st_ino):
                            suspects.add(path)  # the same file, same size and mtime: only ctime moved
                        for done in pool.submit(path, os.path.join(root, path), info.st_size):
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


# --- walking a large tree in several processes ----------------------------------
#
# A warm scan is a stat per file and an index row per file: Python work that holds the
# GIL, so threads cannot share it. Processes can: each walks whole subtrees with its
# own connection to the state database (WAL lets them read side by side; their few
# writes queue on SQLite's lock), hashes what changed there, and reports its counts.

PARALLEL_MIN_FILES = 20_000  # indexed files below which one process is quicker than starting more
TASKS_PER_WALKER = 4  # subtrees per process to share out, so one large subtree does not leave the others idle
WALKER_MAIN = "from syncer.index.scan import serve_walker; serve_walker()"


class WalkerError(Exception):
    """A walker process failed or broke the protocol."""


def walker_count(db, job):
    """Return how many processes should walk `job`'s tree: one per core when the index
    already holds a large tree for it (a first scan is bound by hashing, which the
    thread pool already spreads over the cores), else 0."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cores < 2 or not PARALLEL_MIN_FILES or not sys.executable or getattr(db, "state_dir", None) is None:
        return 0
    row = db.execute("SELECT 1 FROM files WHERE dataset=? AND side=? LIMIT 1 OFFSET ?",
                     (job.dataset, job.side, PARALLEL_MIN_FILES - 1)).fetchone()
    return cores if row else 0


def scan_in_processes(db, job, walkers, progress=None):
    """Scan `job` with `walkers` processes; return (ScanStats, visited directories).

    The top of the tree is scanned here, one level at a time, until there are enough
    subtrees to share out; each walker then takes the next subtree as it finishes one.
    Raise WalkerError if a walker fails (its finished work is kept: rows it wrote are
    true; the caller walks again).
    """
    stats, visited = ScanStats(), set()
    tasks = scan_directories(db, job, [""], stats, visited, progress, descend=False)
    for _ in range(3):
        if not tasks or len(tasks) >= walkers * TASKS_PER_WALKER:
            break
        tasks = scan_directories(db, job, sorted(tasks), stats, visited, progress, descend=False)
    tasks = deque(sorted(tasks))
    if not tasks:
        return stats, visited
    threads = max(1, default_workers() // walkers)
    config = {"state_dir": os.fspath(db.state_dir), "threads": threads, "job": asdict(job)}
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [package_parent, os.environ.get("PYTHONPATH")])))
    processes, selector, finished = [], selectors.DefaultSelector(), False
    try:
        for _ in range(min(walkers, len(tasks))):
            process = subprocess.Popen([sys.executable, "-c", WALKER_MAIN], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, env=environment, text=True)
            processes.append(process)
            process.stdin.write(json.dumps(config) + "\n" + json.dumps(tasks.popleft()) + "\n")
            process.stdin.flush()
            selector.register(process.stdout, selectors.EVENT_READ, process)
        while selector.get_map():
            for key, _ in selector.select():
                process = key.data
                line = process.stdout.readline()
                if not line:
                    raise WalkerError(f"walker {process.pid} exited with {process.wait()}")
                try:
                    merge_walker_result(stats, visited, json.loads(line))
                except (ValueError, KeyError, TypeError) as error:
                    raise WalkerError(f"walker {process.pid} answered {line[:200]!r}: {error}")
                if progress:
                    progress(stats.files, stats.hashed_bytes)
                if tasks:
                    process.stdin.write(json.dumps(tasks.popleft()) + "\n")
                    process.stdin.flush()
                else:
                    selector.unregister(process.stdout)
                    process.stdin.close()
        finished = True
    except OSError as error:
        raise WalkerError(str(error))
    finally:
        selector.close()
        for process in processes:
            if not finished:  # an error or an interrupt: the walkers' work is not wanted any more
                process.kill()
            for stream in (process.stdin, process.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return stats, visited


def merge_walker_result(stats, visited, result):
    for name in ("files", "bytes", "hashed", "hashed_bytes", "removed"):
        setattr(stats, name, getattr(stats, name) + int(result[name]))
    stats.skipped.extend((path, reason) for path, reason in result["skipped"])
    stats.corrupt.extend(result["corrupt"])
    visited.update(result["visited"])


def serve_walker():
    """A walker process: read the job (one JSON line), then scan one subtree per line
    and answer each with a JSON line of counts, until stdin closes."""
    config = json.loads(sys.stdin.readline())
    job = ScanJob(**{**config["job"], "exclude": tuple(config["job"]["exclude"]),
                     "algorithms": tuple(config["job"]["algorithms"])})
    try:
        db = StateDB(config["state_dir"])
        try:
            for line in sys.stdin:
                stats, visited = ScanStats(), set()
                scan_directories(db, job, [json.loads(line)], stats, visited, workers=config["threads"])
                answer = {name: getattr(stats, name)
                          for name in ("files", "bytes", "hashed", "hashed_bytes", "removed")}
                answer.update(skipped=stats.skipped, corrupt=stats.corrupt, visited=sorted(visited))
                sys.stdout.write(json.dumps(answer) + "\n")
                sys.stdout.flush()
        finally:
            db.close()
    except SyncerError as error:  # the parent walks again and reports it once, without a traceback
        sys.exit(error.exit_code)


__all__ = ["ScanStats", "scan_tree", "parent_of"]
