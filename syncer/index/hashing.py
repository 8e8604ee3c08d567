"""The hashing engine: many files hashed at once, each read once for all its digests.

hashlib releases the GIL while it digests, so a thread pool sized to the cores
(two threads per core, to hide disk waits) keeps them all busy. Each thread reuses
one buffer; files are opened with O_NOATIME (when allowed) and read sequentially.
"""

import hashlib
import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

CHUNK_SIZE = 1 << 20
THREADS_PER_CORE = 2
# Files up to this size are hashed in batches of BATCH_FILES per pool job: hashing one
# takes microseconds, less than handing a job to a thread and its result back, so a
# tree of small files would otherwise be bound by the pool's own overhead.
SMALL_FILE = 64 * 2**10
BATCH_FILES = 64
ALGORITHMS = {"md5": hashlib.md5, "sha256": hashlib.sha256}
_local = threading.local()


class Throttle:
    """Keep the average read rate at or below `mib_per_second` (None: unlimited)."""

    def __init__(self, mib_per_second=None):
        self.rate = mib_per_second * 2**20 if mib_per_second else None
        self.started = time.monotonic()
        self.bytes = 0

    def consume(self, count):
        if not self.rate:
            return
        self.bytes += count
        ahead = self.bytes / self.rate - (time.monotonic() - self.started)
        if ahead > 0:
            time.sleep(ahead)


class FileChanged(Exception):
    """The file changed while it was being read; its digest would be a lie."""


@dataclass
class Hashed:
    size: int
    mtime_ns: int
    ctime_ns: int
    dev: int
    ino: int
    digests: dict


READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
# O_NOATIME while it is allowed: it needs the file's ownership (or root), and once refused
# it is not tried again, so a tree of other users' files costs one open a file, not two.
NO_ATIME = [getattr(os, "O_NOATIME", 0)]


def open_for_reading(path, flags=READ_FLAGS, directory=None):
    """Open `path` (relative to the open directory `directory`, if given) read-only,
    without updating its access time when we may."""
    if NO_ATIME[0]:
        try:
            return os.open(path, flags | NO_ATIME[0], dir_fd=directory)
        except PermissionError:  # not the owner, or not readable at all: then this raises too
            fd = os.open(path, flags, dir_fd=directory)
            NO_ATIME[0] = 0
            return fd
    return os.open(path, flags, dir_fd=directory)


def buffer():
    if not hasattr(_local, "buffer"):
        _local.buffer = bytearray(CHUNK_SIZE)
        _local.view = memoryview(_local.buffer)
    return _local.buffer, _local.view


def read_chunks(fd):
    """Yield memoryviews of successive chunks of the open file `fd` (views of one
    reused buffer: each is valid only until the next is produced)."""
    data, view = buffer()
    stream = os.fdopen(fd, "rb", buffering=0, closefd=False)
    while True:
        count = stream.readinto(data)
        if not count:
            return
        yield view[:count]


def hash_file(path, algorithms, on_chunk=None, directory=None, seen=None):
    """Return a Hashed for the file at `path` with a digest per algorithm name.
    `on_chunk(byte_count)` is called after each read (scrub's throttle). With
    `directory` (an open directory), `path` is a name in it. With `seen`, the lstat a
    walk made of it, the file opened must be that one (its device and inode): a path
    whose folder was swapped for a symlink since leads elsewhere. Either way, a symlink
    of that name is not followed.

    Raise FileChanged if its size or mtime moved while it was read (or it is not the
    file seen), OSError if it cannot be read.
    """
    named = directory is not None or seen is not None
    fd = open_for_reading(path, READ_FLAGS | NO_FOLLOW if named else READ_FLAGS, directory)
    try:
        before = os.fstat(fd)
        if seen is not None and (before.st_dev, before.st_ino) != (seen.st_dev, seen.st_ino):
            raise FileChanged(path)
        hashers = [(name, ALGORITHMS[name]()) for name in algorithms]
        size = read_into_hashers(fd, before.st_size, [hasher for _, hasher in hashers], on_chunk)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if (after.st_mtime_ns, after.st_size) != (before.st_mtime_ns, before.st_size) or size != after.st_size:
        raise FileChanged(path)
    return Hashed(after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_dev, after.st_ino,
                  {name: hasher.hexdigest() for name, hasher in hashers})


def hash_small_file(path, algorithms, seen, directory=None):
    """Return a Hashed for the small regular file at `path` (a name in the open
    directory `directory`, if given), which the caller has just lstat'ed (`seen`): one
    read of its size and a byte more, one fstat after it.

    The walk's lstat stands in for the fstat before the read: a file that no longer has
    the inode, size and mtime it was seen with, or gave a byte more or less than its
    size, raises FileChanged. The name is not followed: a symlink put in its place is
    not read. This is the path of most files in a tree of small files, so it is kept to
    four system calls (hash_file makes six), and the name is opened in its directory,
    not resolved again from the root (a quarter of the open's time in a deep tree).
    """
    fd = open_for_reading(path, READ_FLAGS | NO_FOLLOW, directory)
    try:
        data = os.read(fd, seen.st_size + 1)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if (after.st_ino, after.st_dev, after.st_size, after.st_mtime_ns) != \
            (seen.st_ino, seen.st_dev, seen.st_size, seen.st_mtime_ns) or len(data) != after.st_size:
        raise FileChanged(path)
    return Hashed(after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_dev, after.st_ino,
                  {name: ALGORITHMS[name](data).hexdigest() for name in algorithms})


def read_into_hashers(fd, expected, hashers, on_chunk=None):
    """Feed the open file `fd`, of `expected` bytes, to every hasher; return the bytes read.

    Reading stops once `expected` bytes have come, without the extra read that would
    only say "end of file": the caller's second fstat catches a file that grew. So a
    small file costs one read call, and no fadvise.
    """
    data, view = buffer()
    if expected > CHUNK_SIZE and hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    size = 0
    while True:
        count = os.readv(fd, (data,))
        if not count:
            return size
        chunk = view[:count]
        for hasher in hashers:
            hasher.update(chunk)
        size += count
        if on_chunk:
            on_chunk(count)
        if size >= expected:
            return size


def s3_multipart_etag(path, part_size):
    """Return the ETag S3 gives a multipart upload of the file with `part_size` parts:
    the MD5 of the parts' MD5s, then "-" and the number of parts."""
    part_digests, part, filled = [], hashlib.md5(), 0
    fd = open_for_reading(path)
    try:
        for chunk in read_chunks(fd):
            while chunk:
                take = min(len(chunk), part_size - filled)
                part.update(chunk[:take])
                filled += take
                chunk = chunk[take:]
                if filled == part_size:
                    part_digests.append(part.digest())
                    part, filled = hashlib.md5(), 0
    finally:
        os.close(fd)
    if filled or not part_digests:
        part_digests.append(part.digest())
    return f"{hashlib.md5(b''.join(part_digests)).hexdigest()}-{len(part_digests)}"


def usable_cores():
    """Return the cores this process may run on (its affinity, not the machine's count)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores)


def default_workers():
    """Return the hashing threads for this machine: two per core we may run on, so
    that while one thread waits for the disk another keeps the core hashing (a cold
    read of one file at a time leaves the cores idle much of the time)."""
    return usable_cores() * THREADS_PER_CORE


class HashPool:
    """Hash files on a thread pool, keeping a bounded number in flight.

    submit() queues a job and returns the results finished so far, oldest first, so a
    caller streaming millions of files holds only a bounded number of them at a time.
    A large file at the head of the line does not idle the other threads: up to
    `window` jobs are queued or running at any moment, and up to `held` finished
    results may wait behind the oldest unfinished one before submit() blocks on it.
    """

    def __init__(self, algorithms, workers=None):
        self.algorithms = tuple(algorithms)
        self.workers = workers or default_workers()
        self.window = self.workers * 4
        self.held = self.window * 64
        self.executor = ThreadPoolExecutor(self.workers, thread_name_prefix="hash")
        self.pending = deque()  # (keys, future of a list of results), oldest first
        self.pending_files = 0
        self.batch_keys, self.batch_paths = [], []
        self.unfinished = 0
        self.finished = threading.Condition()

    def submit(self, key, path, size=None, seen=None, at=None):
        """Queue `path` (of `size` bytes, when known: small files go in batches); return
        a list of finished (key, Hashed | Exception), the queued ones in the order submitted.

        A small file the caller has just lstat'ed (`seen`) is hashed at once, in this
        thread: its few microseconds of work would cost more in a thread's hand-over of
        the GIL, which a walk that stats files between reads pays again and again. With
        `at`, (open directory, name), it is opened by its name in that directory. A
        larger file hashed on a thread, later, by its path, must then still be the file
        `seen` (hash_file)."""
        if seen is not None and seen.st_size <= SMALL_FILE:
            directory, name = at or (None, path)
            try:
                return [(key, hash_small_file(name, self.algorithms, seen, directory))]
            except FileChanged:
                return [(key, self.hash_or_error(name, directory))]
            except OSError as error:
                return [(key, error)]
        self.batch_keys.append(key)
        self.batch_paths.append((path, seen))
        if size is not None and size <= SMALL_FILE and len(self.batch_paths) < BATCH_FILES:
            return []
        return self.dispatch()

    def dispatch(self):
        """Hand the batch gathered so far to the pool as one job; return the finished results."""
        if not self.batch_paths:
            return []
        with self.finished:
            while self.unfinished >= self.window:
                self.finished.wait()
            self.unfinished += 1
        self.pending.append((self.batch_keys, self.executor.submit(self.run_job, self.batch_paths)))
        self.pending_files += len(self.batch_keys)
        self.batch_keys, self.batch_paths = [], []
        done = []
        while self.pending and (self.pending_files > self.held or self.pending[0][1].done()):
            done += self.collect()
        return done

    def run_job(self, paths):
        try:
            return [self.hash_or_error(path, seen=seen) for path, seen in paths]
        finally:
            with self.finished:
                self.unfinished -= 1
                self.finished.notify()

    def hash_or_error(self, path, directory=None, seen=None):
        try:
            return self.hash_once_more_if_changed(path, directory, seen)
        except (OSError, FileChanged) as error:
            return error

    def drain(self):
        yield from self.dispatch()
        while self.pending:
            yield from self.collect()

    def collect(self):
        keys, future = self.pending.popleft()
        self.pending_files -= len(keys)
        return list(zip(keys, future.result()))

    def hash_once_more_if_changed(self, path, directory=None, seen=None):
        try:
            return hash_file(path, self.algorithms, directory=directory, seen=seen)
        except FileChanged:
            return hash_file(path, self.algorithms, directory=directory, seen=seen)

    def close(self):
        self.executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
