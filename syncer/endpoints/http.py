"""What the HTTP endpoints share: one place that turns a `requests` outcome into the
project's errors, classified permanent or temporary for the retry wrapper.
"""

import email.utils
import threading
import time

from syncer.errors import AuthenticationError, EndpointError


class NotFound(EndpointError):
    """The endpoint answered 404: the object or directory does not exist."""

    def __init__(self, message):
        super().__init__(message, permanent=True)


class ResponseStream:
    """A streamed HTTP body as a readable, closable binary stream."""

    def __init__(self, response):
        self.response = response
        self.response.raw.decode_content = True

    def read(self, size=-1):
        from urllib3.exceptions import HTTPError

        try:
            return self.response.raw.read(None if size is None or size < 0 else size)
        except HTTPError as error:  # a reset or a timeout once the headers came: temporary, like one before
            raise EndpointError(f"the connection broke while reading the answer ({error.__class__.__name__})")

    def close(self):
        self.response.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


TEMPORARY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
TIMEOUT = (10, 120)  # (connect, read) seconds


def retry_after_seconds(headers, now=None):
    """Return how long the server asks us to wait, from `Retry-After` (seconds or an
    HTTP date), else from `X-RateLimit-Reset` (seconds to wait, or an epoch time), else None."""
    now = now or time.time()
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            pass
    reset = headers.get("X-RateLimit-Reset") or headers.get("RateLimit-Reset")
    if reset and reset.strip().isdigit():
        seconds = float(reset)
        return max(0.0, seconds - now) if seconds > 10**9 else seconds
    return None


class RateBudget:
    """What is left of a service's request budget, as its last answer's
    `X-RateLimit-Remaining` and `X-RateLimit-Reset` said. When no more than `reserve`
    requests are left, the next one is not sent: send() raises a temporary EndpointError
    asking to wait until the reset, so the retry wrapper pauses before the budget runs
    out rather than after a 429 (other clients of the same token share the budget)."""

    def __init__(self, reserve=5):
        self.reserve = reserve
        self.remaining = self.reset = None
        self.lock = threading.Lock()

    def update(self, headers):
        remaining, reset = headers.get("X-RateLimit-Remaining"), headers.get("X-RateLimit-Reset")
        if remaining and remaining.strip().isdigit() and reset and reset.strip().isdigit():
            with self.lock:
                seconds = float(reset)
                self.remaining = int(remaining)
                self.reset = seconds if seconds > 10**9 else time.time() + seconds

    def pause(self, now=None):
        """Return the seconds to wait before the next request, or None to send it now.
        The second after the reset is waited too: the server counts whole seconds."""
        now = now or time.time()
        with self.lock:
            if self.remaining is None or self.remaining > self.reserve:
                return None
            if now >= self.reset + 1:
                self.remaining = self.reset = None  # a new window: the next answer says how much
                return None
            return self.reset + 1 - now


def send(session, method, url, where, credential_hint, budget=None, **arguments):
    """Send one request; return the response when its status is below 400.

    Raise AuthenticationError on 401 (naming `credential_hint`), EndpointError with
    `retry_after` on 429, temporary on 5xx and connection failures, permanent on the
    other 4xx. With a RateBudget that is nearly used, raise a temporary EndpointError
    asking to wait for its reset instead of sending. The URL in messages never carries
    credentials (none of ours has any).
    """
    import requests

    wait = budget.pause() if budget else None
    if wait is not None:
        raise EndpointError(f"{where}: {budget.remaining} requests left of the rate limit; pausing until it resets",
                            retry_after=wait)
    arguments.setdefault("timeout", TIMEOUT)
    try:
        response = session.request(method, url, **arguments)
    except requests.ConnectionError:
        raise EndpointError(f"{where}: cannot connect")
    except requests.Timeout:
        raise EndpointError(f"{where}: timed out")
    except requests.RequestException as error:
        raise EndpointError(f"{where}: {error.__class__.__name__}")
    if budget:
        budget.update(response.headers)
    if response.status_code < 400:
        return response
    raise error_for(response, where, credential_hint)


def server_clock_offset(url, where):
    """Return how many seconds the clock of the server at `url` is ahead of ours (negative:
    behind), from the `Date` header of one unauthenticated HEAD request; the answer's
    status does not matter. Raise EndpointError when it cannot be reached or sends no Date."""
    import requests

    sent = time.time()
    try:
        response = requests.head(url, timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as error:
        raise EndpointError(f"{where}: cannot connect ({error.__class__.__name__})")
    received = time.time()
    try:
        server = email.utils.parsedate_to_datetime(response.headers.get("Date", "")).timestamp()
    except (TypeError, ValueError):
        raise EndpointError(f"{where}: the answer carries no Date header", permanent=True)
    return server - (sent + received) / 2


def error_for(response, where, credential_hint):
    status = response.status_code
    detail = short_detail(response)
    if status == 401:
        return AuthenticationError(f"{where}: the credentials were refused (HTTP 401{detail}); "
                                   f"check {credential_hint}")
    if status == 429:
        return EndpointError(f"{where}: rate limited (HTTP 429)", retry_after=retry_after_seconds(response.headers))
    if status == 404:
        return NotFound(f"{where}: HTTP 404{detail}")
    if status in TEMPORARY_STATUSES:
        return EndpointError(f"{where}: HTTP {status}{detail}", retry_after=retry_after_seconds(response.headers))
    return EndpointError(f"{where}: HTTP {status}{detail}", permanent=True)


def short_detail(response):
    """A short, safe reason from an error body (`Message`/`message`), or ''."""
    try:
        document = response.json()
    except ValueError:
        return ""
    if isinstance(document, dict):
        message = document.get("Message") or document.get("message")
        if message:
            return f": {str(message)[:200]}"
    return ""
