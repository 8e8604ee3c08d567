"""Cross-cutting concerns as wrappers around an endpoint: same protocol in, same out.

- RetryingEndpoint retries temporary failures (429, 5xx, connection errors) with
  exponential backoff and jitter, waiting what `Retry-After`/rate-limit headers ask
  for; it decides only from the endpoint's own `permanent` classification.
- LimitedEndpoint bounds how many transfers run against the endpoint at once.
- DryRunEndpoint lets reads through and turns every write into a log line.
- RetryingMirrors and DryRunMirrors do the same for a MirrorEndpoint.

Each forwards the methods its contract names, and nothing else. They are composed in
one place, syncer.endpoints.factory.
"""

import logging
import os
import pickle
import random
import tempfile
import threading
import time

from syncer.endpoints.base import Entry
from syncer.errors import EndpointError

log = logging.getLogger("syncer.retry")


class Retry:
    """Call a function until it succeeds, its failure is permanent, or the attempts are
    used up: exponential backoff with jitter, or what the server asked to wait."""

    def __init__(self, attempts=5, base_delay=1.0, max_delay=60.0, max_wait=300.0, sleep=time.sleep):
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_wait = max_wait  # a server asking for a longer pause is reported, not waited for
        self.sleep = sleep

    def __call__(self, what, function, *arguments, **keywords):
        """Return function(*arguments); re-raise the last error."""
        for attempt in range(1, self.attempts + 1):
            try:
                return function(*arguments, **keywords)
            except EndpointError as error:
                if error.permanent or attempt == self.attempts:
                    raise
                delay = self.delay(attempt, error.retry_after)
                if delay is None:
                    raise EndpointError(f"{error} (the server asks to wait {error.retry_after:.0f}s; "
                                        f"try again later)", retry_after=error.retry_after)
                log.warning("%s (%s); retrying in %.1fs (attempt %d of %d)", error, what, delay, attempt + 1,
                            self.attempts)
                self.sleep(delay)
        raise AssertionError("unreachable")

    def delay(self, attempt, retry_after):
        """Seconds to wait before the next attempt: what the server asked for, else
        exponential backoff with jitter. None when the server asks for more than max_wait."""
        if retry_after is not None:
            return None if retry_after > self.max_wait else max(0.0, retry_after)
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return backoff * (0.5 + random.random() / 2)


class Forwarding:
    """What both contracts share, forwarded to the wrapped endpoint."""

    def __init__(self, inner):
        self.inner = inner

    @property
    def capabilities(self):
        return self.inner.capabilities

    def describe(self):
        return self.inner.describe()

    def list_entries(self):
        return self.inner.list_entries()

    def check_access(self):
        return self.inner.check_access()


class Wrapper(Forwarding):
    """Base of the wrappers of an Endpoint: each method of the contract goes to the wrapped one."""

    def open_entry(self, entry):
        return self.inner.open_entry(entry)

    def write_entry(self, path, source, digests):
        return self.inner.write_entry(path, source, digests)

    def delete_entry(self, path):
        return self.inner.delete_entry(path)

    def head_sha256(self, path):
        return self.inner.head_sha256(path)


class RetryingEndpoint(Wrapper):
    """Retries temporary failures, decided only from the endpoint's own `permanent` classification."""

    def __init__(self, inner, **settings):
        super().__init__(inner)
        self.retry = Retry(**settings)

    def list_entries(self):
        return spooled_listing(self.retry, self.inner.list_entries)

    def check_access(self):
        return self.retry("checking access", self.inner.check_access)

    def open_entry(self, entry):
        return self.retry(f"reading {entry.path}", self.inner.open_entry, entry)

    def write_entry(self, path, source, digests):
        return self.retry(f"writing {path}", self.inner.write_entry, path, source, digests)

    def delete_entry(self, path):
        return self.retry(f"deleting {path}", self.inner.delete_entry, path)

    def head_sha256(self, path):
        return self.retry(f"reading the checksum of {path}", self.inner.head_sha256, path)


def spooled_listing(retry, list_entries):
    """Yield the entries of list_entries(), retried as a whole with `retry`: a listing that
    fails half-way is started again, so no caller ever sees part of one or an entry twice.
    Each attempt is written to an unnamed temporary file as it arrives and read back once
    it completed, so a listing of a million entries is never held in memory."""
    with tempfile.TemporaryFile(prefix="syncer-listing-") as spool:
        def attempt():
            spool.seek(0)
            spool.truncate()
            for entry in list_entries():
                pickle.dump(entry, spool, pickle.HIGHEST_PROTOCOL)

        retry("listing", attempt)
        end = spool.tell()
        spool.seek(0)
        while spool.tell() < end:
            yield pickle.load(spool)


class ClosingStream:
    """A stream that calls `on_close` once when it is closed."""

    def __init__(self, stream, on_close):
        self.stream = stream
        self.on_close = on_close

    def read(self, size=-1):
        return self.stream.read(size)

    def close(self):
        if self.on_close:
            try:
                self.stream.close()
            finally:
                self.on_close()
                self.on_close = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LimitedEndpoint(Wrapper):
    def __init__(self, inner, concurrency=4):
        super().__init__(inner)
        self.concurrency = max(1, int(concurrency))
        self.slots = threading.BoundedSemaphore(self.concurrency)

    def open_entry(self, entry):
        """The slot is held until the returned stream is closed: the transfer is what counts."""
        self.slots.acquire()
        try:
            stream = self.inner.open_entry(entry)
        except BaseException:
            self.slots.release()
            raise
        return ClosingStream(stream, self.slots.release)

    def write_entry(self, path, source, digests):
        with self.slots:
            return self.inner.write_entry(path, source, digests)

    def delete_entry(self, path):
        with self.slots:
            return self.inner.delete_entry(path)


class DryRunEndpoint(Wrapper):
    def __init__(self, inner):
        super().__init__(inner)
        self.planned = []  # (operation, path) that a real run would do

    def write_entry(self, path, source, digests):
        log.info("dry run: would upload %s to %s", path, self.describe())
        self.planned.append(("upload", path))
        algorithm = self.capabilities.checksum
        return Entry(path, os.path.getsize(source), digests.get(algorithm), algorithm)

    def delete_entry(self, path):
        log.info("dry run: would delete %s from %s", path, self.describe())
        self.planned.append(("delete", path))


class MirrorWrapper(Forwarding):
    """Base of the wrappers of a MirrorEndpoint: each method of the contract goes to the wrapped one."""

    def list_projects(self):
        return self.inner.list_projects()

    def remote_refs(self, project):
        return self.inner.remote_refs(project)

    def clone_mirror(self, project, target):
        return self.inner.clone_mirror(project, target)

    def update_mirror(self, project, target):
        return self.inner.update_mirror(project, target)

    def create_project(self, namespace, path):
        return self.inner.create_project(namespace, path)

    def push_refs(self, mirror, project):
        return self.inner.push_refs(mirror, project)


class RetryingMirrors(MirrorWrapper):
    """Retries temporary failures of the API and of git, as RetryingEndpoint does."""

    def __init__(self, inner, **settings):
        super().__init__(inner)
        self.retry = Retry(**settings)

    def list_entries(self):
        return spooled_listing(self.retry, self.inner.list_entries)

    def check_access(self):
        return self.retry("checking access", self.inner.check_access)

    def list_projects(self):
        return self.retry("listing the projects", self.inner.list_projects)

    def remote_refs(self, project):
        return self.retry("reading the refs", self.inner.remote_refs, project)

    def clone_mirror(self, project, target):
        return self.retry("cloning", self.inner.clone_mirror, project, target)

    def update_mirror(self, project, target):
        return self.retry("updating the mirror", self.inner.update_mirror, project, target)

    def create_project(self, namespace, path):
        return self.retry("creating the project", self.inner.create_project, namespace, path)

    def push_refs(self, mirror, project):
        return self.retry("pushing", self.inner.push_refs, mirror, project)


class DryRunMirrors(MirrorWrapper):
    """Lets reads and local mirroring through; turns what would change the service into log lines."""

    def __init__(self, inner):
        super().__init__(inner)
        self.planned = []  # (operation, what) that a real run would do

    def create_project(self, namespace, path):
        log.info("dry run: would create project on %s", self.describe())
        self.planned.append(("create_project", namespace))

    def push_refs(self, mirror, project):
        log.info("dry run: would push refs on %s", self.describe())
        self.planned.append(("push_refs", str(mirror)))
