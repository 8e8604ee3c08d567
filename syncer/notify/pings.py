"""Sending notifications: healthchecks.io-style pings, ntfy, a generic JSON webhook.

Only here does syncer speak HTTP to a notification service. A notification that
cannot be delivered is logged (without its URL: the URL is the secret) and never
fails the action it reports on.
"""

import json
import logging
import socket
from urllib.parse import urlsplit

import requests

from syncer.log import mask

log = logging.getLogger("syncer.notify")
TIMEOUT_SECONDS = 10
BODY_LIMIT = 10_000  # healthchecks keeps 100 kB of a ping body; a log tail needs far less
USER_AGENT = "syncer-notify"


def post(kind, url, **request):
    """POST to `url`; return True when it answered 2xx. Log (masked, URL-free) otherwise."""
    try:
        response = requests.post(url, timeout=TIMEOUT_SECONDS, headers={"User-Agent": USER_AGENT,
                                                                        **request.pop("headers", {})},
                                 **request)
    except requests.RequestException as error:
        log.warning("%s notification to %s could not be sent: %s", kind, host_of(url), mask(failure_reason(error)))
        return False
    if not 200 <= response.status_code < 300:
        log.warning("%s notification to %s was refused: HTTP %d %s", kind, host_of(url), response.status_code,
                    mask(response.reason or ""))
        return False
    return True


def host_of(url):
    """The host (and port) of `url`: what may be logged of it; its path and query hold the token."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def failure_reason(error):
    """Say why a request failed without quoting its URL: the innermost system error
    (connection refused, name not known, ...) found in the exception's chain, else a
    timeout or the exception's class."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        linked = [getattr(current, "reason", None), current.__cause__, current.__context__, *current.args]
        pending += [item for item in linked if isinstance(item, BaseException)]
    if isinstance(error, requests.Timeout):
        return f"no answer within {TIMEOUT_SECONDS}s"
    return error.__class__.__name__


def ping_healthchecks(url, state, body=""):
    """Ping a healthchecks.io-style check: state is "start", "success" or "fail"; the
    body (a log tail) is shown on the check's page."""
    suffix = {"start": "/start", "success": "", "fail": "/fail"}[state]
    return post("healthchecks", url.rstrip("/") + suffix, data=mask(body)[-BODY_LIMIT:].encode("utf-8"))


def send_ntfy(url, title, message, problem):
    """Publish to an ntfy topic URL: a high-priority message for a problem."""
    headers = {"Title": title.encode("utf-8"), "Priority": "high" if problem else "default",
               "Tags": "warning" if problem else "white_check_mark"}
    return post("ntfy", url, data=mask(message)[-BODY_LIMIT:].encode("utf-8"), headers=headers)


def send_webhook(url, document):
    """POST `document` as JSON to a generic webhook."""
    body = mask(json.dumps(document, default=str))
    return post("webhook", url, data=body.encode("utf-8"), headers={"Content-Type": "application/json"})


def hostname():
    return socket.gethostname()
