"""Cross-cutting concerns as wrappers around an endpoint: same protocol in, same out.

- RetryingEndpoint retries temporary failures (429, 5xx, connection errors) with
  exponential backoff and jitter, waiting what `Retry-After`/rate-limit headers ask
  for; it decides only from the endpoint's own `permanent` classification.
- LimitedEndpoint bounds how many transfers run against the endpoint at once.
- DryRunEndpoint lets reads through and turns every write into a log line.

They are composed in one place, syncer.endpoints.factory.
"""

import logging
import random
import threading
import time

from syncer.endpoints.base import Entry
from syncer.errors import EndpointError

log = logging.getLogger("syncer.retry")


class Wrapper:
    """Base: everything not overridden goes to the wrapped endpoint."""

    def __init__(self, inner):
        self.inner = inner

    @property
    def capabilities(self):
        return self.inner.capabilities

    def describe(self):
        return self.inner.describe()

    def list_entries(self):
        return self.inner.list_entries()

    def open_entry(self, entry):
        return self.inner.open_entry(entry)

    def write_entry(self, path, source, digests):
        return self.inner.write_entry(path, source, digests)

    def delete_entry(self, path):
        return self.inner.delete_entry(path)

    def refresh_listing(self, db, dataset, deep=False):
        return self.inner.refresh_listing(db, dataset, deep=deep)

    def __getattr__(self, name):
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


class RetryingEndpoint(Wrapper):
    def __init__(self, inner, attempts=5, base_delay=1.0, max_delay=60.0, max_wait=300.0, sleep=time.sleep):
        super().__init__(inner)
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_wait = max_wait  # a server asking for a longer pause is reported, not waited for
        self.sleep = sleep

    def retry(self, what, function, *arguments, **keywords):
        """Call function(*arguments) until it succeeds, a failure is permanent, or the
        attempts are used up; re-raise the last error."""
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

    def list_entries(self):
        # A listing that fails half-way is started again as a whole, so it is collected first.
        yield from self.retry("listing", lambda: list(self.inner.list_entries()))

    def open_entry(self, entry):
        return self.retry(f"reading {entry.path}", self.inner.open_entry, entry)

    def write_entry(self, path, source, digests):
        return self.retry(f"writing {path}", self.inner.write_entry, path, source, digests)

    def delete_entry(self, path):
        return self.retry(f"deleting {path}", self.inner.delete_entry, path)

    def refresh_listing(self, db, dataset, deep=False):
        return self.retry("listing", self.inner.refresh_listing, db, dataset, deep=deep)

    def __getattr__(self, name):
        # The endpoint's own extra operations (GitLab's mirror commands) are retried too.
        value = super().__getattr__(name)
        if callable(value) and not name.startswith("_") and name not in ("capabilities", "credential_hint"):
            return lambda *arguments, **keywords: self.retry(name.replace("_", " "), value, *arguments, **keywords)
        return value


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
        import os

        log.info("dry run: would upload %s to %s", path, self.describe())
        self.planned.append(("upload", path))
        algorithm = self.capabilities.checksum
        return Entry(path, os.path.getsize(source), digests.get(algorithm), algorithm)

    def delete_entry(self, path):
        log.info("dry run: would delete %s from %s", path, self.describe())
        self.planned.append(("delete", path))

    def __getattr__(self, name):
        value = super().__getattr__(name)
        if name in getattr(self.inner, "remote_writes", ()):
            def planned(*arguments, **keywords):
                log.info("dry run: would %s on %s", name.replace("_", " "), self.describe())
                self.planned.append((name, str(arguments[0]) if arguments else ""))
            return planned
        return value
