"""A loopback HTTP server that forwards every request to another (the S3 server) and
its answer back, with a Date header of its own: set `clock_offset` to serve a skewed
server clock in front of a real S3 implementation."""

import http.client
from urllib.parse import urlsplit

from tests.fakes.http import FakeServer, Response

HOP_HEADERS = {"connection", "transfer-encoding", "content-length", "keep-alive"}


class ForwardingServer(FakeServer):
    def __init__(self, upstream):
        super().__init__()
        self.upstream = urlsplit(upstream)

    def handle(self, request):
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            headers = {key: value for key, value in request.headers.items() if key.lower() not in HOP_HEADERS}
            connection.request(request.method, request.raw_path, body=request.body or None, headers=headers)
            answer = connection.getresponse()
            body = answer.read()
        finally:
            connection.close()
        kept = {key: value for key, value in answer.getheaders()
                if key.lower() not in HOP_HEADERS | {"date", "server"}}
        return Response(answer.status, body, kept, content_type=answer.getheader("Content-Type") or "text/plain")
