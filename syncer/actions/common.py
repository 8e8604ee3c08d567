"""What every action shares: per-dataset error collection and run records."""

import logging
import os
import stat
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from syncer.actions.hooks import with_hooks
from syncer.errors import (
    EXIT_FINDINGS,
    EXIT_OK,
    AuthenticationError,
    EndpointError,
    OperationalError,
    StateDamaged,
    SyncerError,
    exit_code_of,
)
from syncer.policy.load import check_machine

log = logging.getLogger("syncer")
ITEMS_KEPT = 10_000  # items a report lists (a million uploads are counted, not listed)


@contextmanager
def recorded_run(db, dataset, action):
    """Record one action on one dataset in the run history.

    The block receives a dict to fill: set "exit_code" (0 ok, 1 findings) and any
    summary keys. A SyncerError is recorded as a failure and re-raised.
    """
    run_id = db.start_run(dataset, action)
    outcome = {"exit_code": EXIT_OK}
    started = time.monotonic()
    try:
        yield outcome
    except SyncerError as error:
        db.finish_run(run_id, "failed", exit_code_of(error), {"error": str(error)})
        raise
    except BaseException:
        db.finish_run(run_id, "interrupted", None, {})
        raise
    outcome["seconds"] = round(time.monotonic() - started, 3)
    result = {EXIT_OK: "ok", EXIT_FINDINGS: "findings"}.get(outcome["exit_code"], "failed")
    db.finish_run(run_id, result, outcome["exit_code"], {k: v for k, v in outcome.items() if k != "items"})


RESTIC_MEMORY = "restic-memory"  # the run that records restic's memory running over half the machine's


def machine_memory():
    """This machine's physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def watch_restic_memory(db, dataset, action, peak_rss, machine_bytes=None):
    """Warn when restic's peak memory in `action` (bytes) exceeded half the machine's:
    record a "restic-memory" run with findings, which status shows as a finding and an
    unattended step notifies; record it ok once that action stays under again, so the
    warning clears (a recovery). restic's index grows with the repository, and on a
    small board restic is what gets killed for memory first."""
    if not peak_rss:
        return
    machine_bytes = machine_bytes or machine_memory()
    over = peak_rss > machine_bytes / 2
    previous = db.last_run(dataset, RESTIC_MEMORY)
    warned = previous and previous["result"] == "findings" and previous["summary"].get("action") == action
    if not over and not warned:
        return
    with recorded_run(db, dataset, RESTIC_MEMORY) as outcome:
        outcome.update(action=action, restic_peak_rss_bytes=peak_rss, machine_memory_bytes=machine_bytes)
        if over:
            message = (f"restic used {peak_rss / 2**20:.0f} MiB during {action}, over half of this machine's "
                       f"{machine_bytes / 2**20:.0f} MiB: its index grows with the repository, and it is what "
                       f"gets killed first when memory runs out")
            log.warning("%s: %s", dataset, message)
            outcome.update(error=message, exit_code=EXIT_FINDINGS)


def require_on_this_machine(policy, *parts):
    """Raise OperationalError naming the policy file and field when something `parts` of
    the policy need (see check_machine) is not on this machine: a disk not mounted, a
    file not copied yet. That dataset fails (exit 3); the others run."""
    problems = check_machine(policy, parts, missing_only=True)
    if problems:
        raise OperationalError("; ".join(f"{policy.file_label}: {problem}" for problem in problems))


def for_each_dataset(policies, work, action=None, dry_run=False):
    """Call work(policy) for every policy; a failing dataset does not stop the others.

    With `action`, the policy's hooks for that action run around each call. Return the
    report {"datasets": [one result per policy]}; a failure is {"name", "error", "exit_code"}. A damaged state
    database stops them all (StateDamaged is raised): no dataset can be worked on without it.
    """
    results = []
    for policy in policies:
        try:
            if action:
                result = with_hooks(policy, action, lambda policy=policy: work(policy), dry_run)
            else:
                result = work(policy)
        except StateDamaged:
            raise
        except SyncerError as error:
            log.error("%s: %s", policy.name, error)
            result = {"name": policy.name, "error": str(error), "exit_code": exit_code_of(error)}
        results.append(result)
    return {"datasets": results}


def run_in_threads(function, jobs, concurrency, name, expected=(EndpointError,)):
    """Call function(job) for every job, at most `concurrency` at a time. Return
    [(job, result, error)] in the order of `jobs`, `error` being an exception of the
    `expected` types (result is then None). An AuthenticationError cancels the jobs not
    started yet and is raised: every one of them would be refused the same way."""
    return list(map_in_threads(function, jobs, concurrency, name, expected))


def map_in_threads(function, jobs, concurrency, name, expected=(EndpointError,)):
    """Yield what run_in_threads returns, one (job, result, error) at a time, taking the
    jobs from the iterable `jobs` as the pool frees up (see BoundedPool)."""
    with BoundedPool(function, concurrency, name, expected) as pool:
        for job in jobs:
            yield from pool.submit(job)
        yield from pool.drain()


class BoundedPool:
    """A thread pool calling function(job), at most `concurrency` at a time, that takes
    no more than 2 x `concurrency` jobs ahead of the outcomes handed back: a million jobs
    are never all queued. submit() and drain() yield the outcomes (job, result, error) in
    the order of the jobs, as run_in_threads describes. Leaving it (an error, a caller
    that stops early) cancels what has not started."""

    def __init__(self, function, concurrency, name, expected=(EndpointError,)):
        self.function = function
        self.concurrency = max(1, concurrency)
        self.expected = expected
        self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=name)
        self.waiting = deque()

    def submit(self, job):
        """Start `job`; yield the outcomes that are due before it may be taken."""
        self.waiting.append((job, self.pool.submit(self.function, job)))
        while len(self.waiting) >= 2 * self.concurrency:
            yield self.outcome(*self.waiting.popleft())

    def drain(self):
        """Yield the outcomes of every job still running or waiting."""
        while self.waiting:
            yield self.outcome(*self.waiting.popleft())

    def outcome(self, job, future):
        try:
            return job, future.result(), None
        except AuthenticationError:
            raise
        except self.expected as error:
            return job, None, error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for _, future in self.waiting:
            future.cancel()
        self.pool.shutdown(wait=True)


class ItemTally:
    """The items of one report: every status counted, the items whose status is not one
    of `quiet` kept up to `limit` (those first by path), how many more in `left_off`.
    A report of a million files counts them all and lists a bounded number."""

    def __init__(self, quiet=("present",), limit=ITEMS_KEPT):
        self.quiet = quiet
        self.limit = limit
        self.counts = {}
        self.kept = []
        self.left_off = 0

    def add_all(self, items):
        for item in items:
            self.add(item)

    def add(self, item):
        self.counts[item["status"]] = self.counts.get(item["status"], 0) + 1
        if item["status"] not in self.quiet:
            self.kept.append(item)
            if len(self.kept) >= 2 * self.limit:
                self.trim()

    def trim(self):
        self.kept.sort(key=lambda item: (item["path"], item["status"]))
        self.left_off += max(0, len(self.kept) - self.limit)
        del self.kept[self.limit:]

    def kept_items(self):
        """Return the kept items in path order."""
        self.trim()
        return self.kept


def quarantine_folder(state_dir, dataset):
    """Where one run keeps the files it replaces (repair's bad copies, what restore
    --in-place overwrites): <state>/quarantine/<dataset>/<time>-<pid>/. syncer never
    deletes it."""
    return Path(state_dir) / "quarantine" / dataset / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"


DOCUMENT_LIMIT = 64 * 2**20  # bytes of a local document read whole (a DNS zone's JSON is far smaller)


def read_local_document(root, relative):
    """Return the bytes of the local file `relative` below `root` (at most
    DOCUMENT_LIMIT + 1: a longer one differs anyway), or None when there is no regular
    file there. Never read through a symlink: a document is digested whole, and a link
    could point anywhere on this machine."""
    from syncer.fsio import UnsafePath, open_folder, split_relative

    try:
        folder = open_folder(root, split_relative(relative)[:-1], create=False)
    except (OSError, UnsafePath):
        return None
    try:
        # O_NONBLOCK: a FIFO planted under the name must not hang the read.
        descriptor = os.open(relative.rpartition("/")[2], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                             dir_fd=folder)
    except OSError:
        return None
    finally:
        os.close(folder)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        return None
    with os.fdopen(descriptor, "rb") as stream:
        return stream.read(DOCUMENT_LIMIT + 1)


def document_copy(documents, path, data):
    """Return the local document `data` as the copy the verdict compares with a listed
    document entry (its digest by the endpoint's Documents; no size), or None."""
    from syncer.verdict import Copy

    return None if data is None else Copy(None, {"sha256": documents.digest(path, data)})
