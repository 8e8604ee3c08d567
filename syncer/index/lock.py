"""Per-dataset locks, so a timer run and a manual run never work on one dataset at once."""

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path

from syncer.errors import LockBusy, OperationalError

DEFAULT_WAIT_SECONDS = float(os.environ.get("SYNCER_LOCK_WAIT", "60"))


@contextmanager
def dataset_lock(state_dir, dataset, wait_seconds=None):
    """Hold the lock of `dataset` for the duration of the block.

    Wait up to `wait_seconds` for another holder to finish, then raise LockBusy
    naming the holder's PID. The kernel releases the lock if we die, so a kill -9
    never leaves a stale lock behind.
    """
    wait_seconds = DEFAULT_WAIT_SECONDS if wait_seconds is None else wait_seconds
    directory = Path(state_dir) / "locks"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / f"{dataset}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise OperationalError(f"cannot create the lock for dataset {dataset} in {directory}: {error.strerror}")
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    raise LockBusy(f"dataset {dataset} is busy: another syncer (PID {holder}) holds its lock; "
                                   f"waited {wait_seconds:.0f}s")
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
