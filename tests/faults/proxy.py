"""A TCP fault proxy on 127.0.0.1, placed between syncer (or restic) and a loopback
server: it forwards bytes faithfully, or injects the faults of a flaky uplink on a
schedule the test sets.

    proxy = FaultProxy(upstream_port)
    proxy.schedule([Fault("reset", after_bytes=300)] * 5)   # the next 5 connections
    ... run syncer against proxy.url ...
    proxy.close()

Each accepted connection takes the next Fault of the schedule (or `proxy.default`
when the schedule is used up, normally a plain pass-through). Faults:

- pass:    forward both ways untouched.
- reset:   forward `after_bytes` bytes from the server (`direction="down"`) or from
           the client (`direction="up"`), then abort both sockets with a TCP RST.
- stall:   forward nothing for `seconds`, then carry on as a pass-through (a stall
           is bounded so that no test hangs on it).
- trickle: forward the server's answer `chunk` bytes at a time, `interval` apart.
- refuse:  answer the connection attempt with an RST before any byte moves.
"""

import select
import socket
import struct
import threading
import time
from dataclasses import dataclass

KINDS = ("pass", "reset", "stall", "trickle", "refuse")


@dataclass(frozen=True)
class Fault:
    kind: str = "pass"
    after_bytes: int = 0
    direction: str = "down"  # which stream `after_bytes` counts: "down" (server->client) or "up"
    seconds: float = 0.0
    chunk: int = 64
    interval: float = 0.005

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; one of {', '.join(KINDS)}")
        if self.direction not in ("down", "up"):
            raise ValueError("direction must be 'down' or 'up'")


PASS = Fault("pass")


def abort(sock):
    """Close `sock` with an RST instead of an orderly FIN (SO_LINGER 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class FaultProxy:
    """Forward 127.0.0.1:<port> to 127.0.0.1:<upstream_port>, injecting faults."""

    def __init__(self, upstream_port, upstream_host="127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.default = PASS
        self.lock = threading.Lock()
        self.pending = []
        self.connections = 0
        self.injected = {kind: 0 for kind in KINDS}
        self.bytes_down = 0
        self.bytes_up = 0
        self.closed = False
        self.sockets = set()
        self.thread = threading.Thread(target=self.accept_loop, name=f"fault-proxy-{self.port}", daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def schedule(self, faults, default=PASS):
        """Apply `faults` to the next connections in order, then `default` to the rest."""
        with self.lock:
            self.pending = list(faults)
            self.default = default

    def faults_injected(self):
        """How many connections got a fault other than pass."""
        with self.lock:
            return sum(count for kind, count in self.injected.items() if kind != "pass")

    def next_fault(self):
        with self.lock:
            self.connections += 1
            fault = self.pending.pop(0) if self.pending else self.default
            self.injected[fault.kind] += 1
            return fault

    def accept_loop(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            fault = self.next_fault()
            if fault.kind == "refuse":
                abort(client)
                continue
            threading.Thread(target=self.serve, args=(client, fault), daemon=True).start()

    def serve(self, client, fault):
        """Carry one connection in one thread (select over both sockets), so an abort
        never races a recv blocked in another thread and the RST really goes out."""
        try:
            server = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            abort(client)
            return
        with self.lock:
            self.sockets.update((client, server))
        if fault.kind == "stall":
            time.sleep(fault.seconds)
        remaining = {"down": None, "up": None}
        if fault.kind == "reset":
            remaining[fault.direction] = fault.after_bytes
        peers = {client: (server, "up"), server: (client, "down")}
        open_reads = {client, server}
        aborted = False
        try:
            while open_reads and not self.closed:
                readable, _, _ = select.select(list(open_reads), [], [], 0.5)
                for source in readable:
                    sink, direction = peers[source]
                    size = fault.chunk if fault.kind == "trickle" and direction == "down" else 65536
                    if remaining[direction] is not None:
                        size = max(1, min(size, remaining[direction]))
                    data = source.recv(size)
                    if not data:
                        open_reads.discard(source)
                        try:
                            sink.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
                        continue
                    sink.sendall(data)
                    with self.lock:
                        if direction == "down":
                            self.bytes_down += len(data)
                        else:
                            self.bytes_up += len(data)
                    if remaining[direction] is not None:
                        remaining[direction] -= len(data)
                        if remaining[direction] <= 0:
                            aborted = True
                            break
                    if fault.kind == "trickle" and direction == "down":
                        time.sleep(fault.interval)
                if aborted:
                    break
        except OSError:
            aborted = True
        with self.lock:
            self.sockets.difference_update((client, server))
        if aborted:
            abort(client)
            abort(server)
        else:
            client.close()
            server.close()

    def close(self):
        self.closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            open_sockets = list(self.sockets)
        for sock in open_sockets:
            abort(sock)
        self.thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
