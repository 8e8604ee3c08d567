"""`syncer serve`: the status page live, /metrics and /api/status, read-only.

Beside syncer/schedule/: a long-running front that calls the actions (status, page)
and changes nothing. A tiny WSGI application served by waitress (pure Python, well
kept: HTTP parsing is not ours to write). GET and HEAD only: any other method is
405, so no action can be started from here. With a token every path needs it, as
`Authorization: Bearer TOKEN` or `?token=TOKEN` (for a browser), compared in constant
time. Each request opens the state database for itself (SQLite's WAL: it never
blocks a running step).
"""

import hmac
import ipaddress
import json
import logging
import signal
from urllib.parse import parse_qs

from syncer.errors import UsageError
from syncer.policy.load import policies_signature, reread_policies

log = logging.getLogger("syncer")
DEFAULT_LISTEN = "127.0.0.1:8473"
# The page needs nothing from outside and runs no script: say so to the browser too.
SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"), ("Cache-Control", "no-store"),
]


def parse_listen(listen):
    """Return (host, port) of HOST:PORT ([V6]:PORT for IPv6). Raise UsageError."""
    host, separator, port = listen.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {listen}: give HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return host, int(port)


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere


class StatusApp:
    """The WSGI application: "/" the page, "/metrics" the Prometheus text, "/api/status"
    the status report as JSON (what `status --json` prints)."""

    def __init__(self, policies, state_dir, token=None, policies_dir=None):
        """`policies_dir`: where `policies` were read, read again when a file there
        changes, so that the page shows a dataset added since the server started."""
        self.policies, self.state_dir, self.token = policies, state_dir, token
        self.policies_dir, self.policies_seen = policies_dir, policies_signature(policies_dir)
        self.routes = {"/": (self.page, "text/html; charset=utf-8"),
                       "/metrics": (self.metrics, "text/plain; version=0.0.4; charset=utf-8"),
                       "/api/status": (self.status, "application/json")}

    def __call__(self, environ, start_response):
        method = environ["REQUEST_METHOD"]
        if self.token and not self.authorized(environ):
            return answer(start_response, "401 Unauthorized", "a token is needed (Authorization: Bearer, or "
                          "?token=)\n", [("WWW-Authenticate", 'Bearer realm="syncer"')], method)
        if method not in ("GET", "HEAD"):
            return answer(start_response, "405 Method Not Allowed", "read-only: GET and HEAD only\n",
                          [("Allow", "GET, HEAD")], method)
        route = self.routes.get(environ.get("PATH_INFO") or "/")
        if not route:
            return answer(start_response, "404 Not Found", "not here: /, /metrics and /api/status are\n", [], method)
        render, content_type = route
        from syncer.index.db import StateDB

        try:
            db = StateDB(self.state_dir)
            try:
                body = render(db)
            finally:
                db.close()
        except Exception as error:  # one failed request, never the server
            log.error("serve %s: %s: %s", environ.get("PATH_INFO"), error.__class__.__name__, error)
            return answer(start_response, "500 Internal Server Error", "the state database cannot be read; see "
                          "the server's log\n", [], method)
        return answer(start_response, "200 OK", body, [], method, content_type)

    def authorized(self, environ):
        given = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, credential = given.partition(" ")
        if scheme.lower() != "bearer":
            credential = (parse_qs(environ.get("QUERY_STRING", "")).get("token") or [""])[0]
        return hmac.compare_digest(credential.strip().encode(), self.token.encode())

    def current_policies(self):
        """The policies, read again when a file of their directory changed. A set with a
        problem is not taken (as the daemon does): the last one read is shown, and the
        problem is logged once."""
        seen = policies_signature(self.policies_dir)
        if seen != self.policies_seen:
            self.policies_seen = seen
            policies, problems = reread_policies(self.policies_dir, self.state_dir)
            if problems:
                log.error("serve: the edited policies are not shown (%s); showing the %d dataset(s) read before",
                          "; ".join(problems), len(self.policies))
            else:
                self.policies = policies
        return self.policies

    def page(self, db):
        from syncer.actions.page import build_page
        from syncer.notify.page import render_page

        return render_page(build_page(self.current_policies(), db))

    def metrics(self, db):
        from syncer.actions.status import run_status
        from syncer.notify.textfile import render_metrics

        return render_metrics(run_status(self.current_policies(), db))

    def status(self, db):
        from syncer.actions.status import run_status

        return json.dumps(run_status(self.current_policies(), db), indent=2, default=str) + "\n"


def answer(start_response, status, text, headers, method, content_type="text/plain; charset=utf-8"):
    body = text.encode("utf-8")
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *SECURITY_HEADERS,
                            *headers])
    return [b"" if method == "HEAD" else body]


def serve(app, host, port):
    """Serve `app` on host:port until SIGTERM or SIGINT."""
    from waitress import create_server

    server = create_server(app, host=host, port=port, threads=4, ident="syncer")

    def stop(number, frame):
        raise SystemExit(0)  # waitress's run() closes the server on it

    signal.signal(signal.SIGTERM, stop)
    shown = f"[{host}]" if ":" in host else host
    log.info("serving the status page on http://%s:%d/ (and /metrics, /api/status)", shown, port)
    server.run()
