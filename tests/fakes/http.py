"""What every loopback fake shares: a threaded HTTP server on 127.0.0.1 (port 0),
a request log, and injectable failures (401, 429 with Retry-After, 5xx).
"""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Fault:
    """One injected failure: answer `status` to the next `times` requests whose path
    contains `path_contains` (any request when empty)."""

    status: int
    times: int = 1
    headers: dict = field(default_factory=dict)
    body: object = None
    path_contains: str = ""
    method: str = ""


class Request:
    """A parsed request handed to a fake's `handle` method."""

    def __init__(self, handler, body):
        self.handler = handler
        self.method = handler.command
        self.raw_path = handler.path
        parts = urlsplit(handler.path)
        self.path = parts.path
        self.query_string = parts.query
        self.query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        self.headers = handler.headers
        self.body = body


class Response:
    def __init__(self, status=200, body=b"", headers=None, content_type="application/json"):
        self.status = status
        if not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        self.body = bytes(body)
        self.headers = dict(headers or {})
        self.headers.setdefault("Content-Type", content_type)


def json_response(document, status=200, headers=None):
    return Response(status, document, headers)


class FakeServer:
    """Base of the fakes: subclasses implement handle(request) -> Response."""

    def __init__(self):
        self.faults = []
        self.clock_offset = 0.0  # seconds added to the Date header of every answer (a skewed server clock)
        self.requests = []  # (method, raw path, headers dict)
        self.lock = threading.RLock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms wait per answer

            def log_message(self, *arguments):
                pass

            def date_time_string(self, timestamp=None):
                return super().date_time_string((timestamp or time.time()) + fake.clock_offset)

            def do_any(self):
                body = read_body(self)
                request = Request(self, body)
                with fake.lock:
                    fake.requests.append((request.method, request.raw_path, dict(self.headers)))
                response = fake.injected(request) or fake.handle(request)
                if response is None:  # the handler wrote the answer itself (a CGI stream)
                    return
                self.send_response(response.status)
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_DESCRIBE = do_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def inject(self, status, times=1, headers=None, body=None, path_contains="", method=""):
        """Answer `status` to the next `times` matching requests."""
        with self.lock:
            self.faults.append(Fault(status, times, dict(headers or {}), body, path_contains, method))

    def injected(self, request):
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.path_contains in request.raw_path \
                        and (not fault.method or fault.method == request.method):
                    fault.times -= 1
                    body = fault.body if fault.body is not None else self.error_body(fault.status)
                    return Response(fault.status, body, fault.headers)
        return None

    def error_body(self, status):
        return {"message": f"{status}"}

    def count_requests(self, method=None, path_contains=""):
        with self.lock:
            return sum(1 for m, path, _ in self.requests
                       if (method is None or m == method) and path_contains in path)

    def handle(self, request):  # pragma: no cover - subclasses implement it
        raise NotImplementedError


def read_body(handler):
    """Read the request body: Content-Length or chunked (git sends large pushes chunked)."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().strip().split(b";")[0], 16)
            if size == 0:
                while handler.rfile.readline().strip():
                    pass
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        return b"".join(chunks)
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""
