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
from syncer.index.hashing import FileChanged, HashPool, default_workers, usable_cores
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
    """
    job = ScanJob(dataset, side, os.fspath(root), tuple(exclude or ()), tuple(algorithms), deep)
    return scan_trees(db, [job], progress)[0]


def scan_trees(db, jobs, progress=None):
    """Bring the index of each ScanJob of `jobs` up to date; return their ScanStats, in
    order. `progress(files_seen, bytes_hashed)` counts all the trees together.

    A tree is walked here until PARALLEL_MIN_FILES of its files have been seen; what is
    left of it, and every tree after it, is then shared out to one process per core
    (scan_in_processes), which walk the trees side by side, so that one tree's tail
    does not leave cores idle. A tree the index already holds that many files of goes
    to them at once, before anything is walked here. Should the processes fail, every
    tree is walked again here, which is always safe.
    """
    started = time.monotonic()
    walkers = walker_count(db)
    results = [(ScanStats(), set()) for _ in jobs]
    # called with one walk's counts, or none: it reports the sums over every tree instead
    report = progress and (lambda *_: progress(sum(stats.files for stats, _ in results),
                                               sum(stats.hashed_bytes for stats, _ in results)))
    tasks = []
    for number, (job, result) in enumerate(zip(jobs, results)):
        if walkers > 1 and (tasks or db.holds_files(job.dataset, job.side, PARALLEL_MIN_FILES)):
            left = [""]  # the walkers are needed anyway: they start on it at once
        else:
            left = scan_directories(db, job, [""], *result, progress=report,
                                    share_after=PARALLEL_MIN_FILES if walkers > 1 else None)
        tasks += [(number, start) for start in left]
    if tasks:
        try:
            scan_in_processes(db, jobs, walkers, tasks, results, progress=report)
        except WalkerError as error:
            log.warning("%s: walking in %d processes failed (%s); walking in this one",
                        ", ".join(job.root for job in jobs), walkers, error)
            results[:] = [(ScanStats(), set()) for _ in jobs]
            for job, result in zip(jobs, results):
                scan_directories(db, job, [""], *result, progress=report)
    for job, (stats, visited) in zip(jobs, results):
        for parent in db.parents(job.dataset, job.side):
            if parent not in visited:
                db.delete_parent(job.dataset, job.side, parent)
        stats.seconds = time.monotonic() - started
        log.debug("scanned %s (%s): %d files, %d hashed (%d bytes) in %.2fs", job.root, job.side, stats.files,
                  stats.hashed, stats.hashed_bytes, stats.seconds)
    return [stats for stats, _ in results]


def scan_directories(db, job, starts, stats, visited, progress=None, workers=None, descend=True, share_after=None):
    """Bring the rows of the directories `starts` (relative paths), and with `descend`
    of everything below them, up to date; add to `stats` and `visited`. Return the
    directories met but not walked: without `descend`, the subdirectories of `starts`;
    with `share_after`, those left once that many files have been seen."""
    is_excluded = compile_excludes(job.exclude) if job.exclude else None
    left, stack = [], list(reversed(starts))
    record = Recorder(db, job, stats)

    with HashPool(job.algorithms, workers) as pool:
        while stack:
            if share_after is not None and stats.files >= share_after:
                left, stack = stack[::-1], []
                break
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
                        for done in pool.submit(path, f"{root}/{path}", info.st_size, info, (fd, name)):
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
# A scan is a stat, often a read, and an index row per file: Python work that holds the
# GIL, so threads cannot share it. Processes can: each walks the directories it is given
# with its own connection to the state database (WAL lets them read side by side; their
# writes queue on SQLite's lock), hashes what changed there, and reports its counts.

PARALLEL_MIN_FILES = 20_000  # files walked here before more processes are worth starting
# While fewer directories than this per process wait to be given out, a process is given
# one directory and hands back its subdirectories, so that one large subtree never leaves
# the other processes idle; past it, a process is given a subtree, which it walks until
# it has seen TASK_FILES files and then hands back what it has not walked: a subtree can
# be most of a tree (the last tree of a scan, or a tree whose files all lie below one
# folder), and walked whole by one process it would leave the others idle.
TASKS_PER_WALKER = 16
TASK_FILES = 10_000
TASKS_HELD = 2
WALKER_MAIN = "from syncer.index.scan import serve_walker; serve_walker()"


class WalkerError(Exception):
    """A walker process failed or broke the protocol."""


def walker_count(db):
    """Return how many processes may walk a tree once it proves large: one per core,
    or 0 on a single core (or when no state directory can be shared)."""
    cores = usable_cores()
    if cores < 2 or not sys.executable or getattr(db, "state_dir", None) is None:
        return 0
    return cores


def scan_in_processes(db, jobs, walkers, starts, results, progress=None):
    """Scan the directories `starts`, (number of a job of `jobs`, directory), and all
    below them, with `walkers` processes; add to that job's (stats, visited) of `results`.

    Each process takes the next directory as it finishes one. Raise WalkerError if a
    walker fails (its finished work is kept: rows it wrote are true; the caller walks
    again).
    """
    tasks = deque(starts)
    threads = max(1, default_workers() // walkers)
    config = {"state_dir": os.fspath(db.state_dir), "threads": threads, "task_files": TASK_FILES,
              "jobs": [asdict(job) for job in jobs]}
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [package_parent, os.environ.get("PYTHONPATH")])))
    processes, selector, finished = {}, selectors.DefaultSelector(), False  # process -> tasks it holds

    def give_out():
        for process, held in processes.items():
            # two tasks a process: the next is waiting in its pipe while it answers one
            while held < TASKS_HELD and tasks:
                number, start = tasks.popleft()
                task = {"job": number, "start": start, "descend": len(tasks) >= walkers * TASKS_PER_WALKER}
                process.stdin.write(json.dumps(task) + "\n")
                held += 1
            process.stdin.flush()
            processes[process] = held

    try:
        for _ in range(min(walkers, len(tasks))):
            process = subprocess.Popen([sys.executable, "-c", WALKER_MAIN], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, env=environment, text=True)
            processes[process] = 0
            process.stdin.write(json.dumps(config) + "\n")
            # read unbuffered: a line left in a reader's buffer would never wake select()
            selector.register(process.stdout.fileno(), selectors.EVENT_READ, [process, b""])
        give_out()
        while any(processes.values()):
            for key, _ in selector.select():
                process, pending = key.data
                data = os.read(key.fd, 1 << 16)
                if not data:
                    raise WalkerError(f"walker {process.pid} exited with {process.wait()}")
                *lines, key.data[1] = (pending + data).split(b"\n")
                for line in lines:
                    try:
                        answer = json.loads(line)
                        number = int(answer["job"])
                        tasks.extend((number, start) for start in merge_walker_result(*results[number], answer))
                    except (ValueError, KeyError, TypeError, IndexError) as error:
                        raise WalkerError(f"walker {process.pid} answered {line[:200]!r}: {error}")
                    processes[process] -= 1
                if progress:
                    progress()
                give_out()
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


def merge_walker_result(stats, visited, result):
    """Add a walker's answer to `stats` and `visited`; return the directories it left."""
    for name in ("files", "bytes", "hashed", "hashed_bytes", "removed"):
        setattr(stats, name, getattr(stats, name) + int(result[name]))
    stats.skipped.extend((path, reason) for path, reason in result["skipped"])
    stats.corrupt.extend(result["corrupt"])
    visited.update(result["visited"])
    return [str(path) for path in result["left"]]


def serve_walker():
    """A walker process: read the jobs (one JSON line), then walk one task per line,
    {"job": its number, "start": directory, "descend": whether to walk below it}, and
    answer each with a JSON line of its job's number, counts and the subdirectories
    left, until stdin closes."""
    config = json.loads(sys.stdin.readline())
    jobs = [ScanJob(**{**job, "exclude": tuple(job["exclude"]), "algorithms": tuple(job["algorithms"])})
            for job in config["jobs"]]
    try:
        db = StateDB(config["state_dir"], take_turns=True)
        try:
            for line in sys.stdin:
                task = json.loads(line)
                stats, visited = ScanStats(), set()
                left = scan_directories(db, jobs[task["job"]], [task["start"]], stats, visited,
                                        workers=config["threads"], descend=task["descend"],
                                        share_after=max(1, config["task_files"]) if task["descend"] else None)
                answer = {name: getattr(stats, name)
                          for name in ("files", "bytes", "hashed", "hashed_bytes", "removed")}
                answer["job"] = task["job"]
                answer.update(skipped=stats.skipped, corrupt=stats.corrupt, visited=sorted(visited), left=left)
                sys.stdout.write(json.dumps(answer) + "\n")
                sys.stdout.flush()
        finally:
            db.close()
    except SyncerError as error:  # the parent walks again and reports it once, without a traceback
        sys.exit(error.exit_code)


__all__ = ["ScanJob", "ScanStats", "scan_tree", "scan_trees", "parent_of"]
