"""A real HTTP receiver on loopback: what a Slack, Teams or webhook endpoint sees.

It records every request (path, headers, raw body) and answers with the statuses it
is given, in order (the last one repeats); a test waits on it with ``wait_for``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    statuses: list[int] = field(default_factory=lambda: [200])
    requests: list[Received] = field(default_factory=list)
    #: Seconds each answer waits (a slow receiver keeps an attempt in flight).
    delay: float = 0.0
    extra_headers: dict[str, str] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(
                    f"{count} requests expected, {len(self.requests)} received"
                )
            return list(self.requests)


def start() -> Receiver:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            with receiver.changed:
                number = len(receiver.requests)
                status = receiver.statuses[min(number, len(receiver.statuses) - 1)]
                receiver.requests.append(
                    Received("POST", self.path, dict(self.headers.items()), body)
                )
                receiver.changed.notify_all()
            if receiver.delay:
                threading.Event().wait(receiver.delay)
            self.send_response(status)
            for name, value in receiver.extra_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"busy")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server=server)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return receiver
