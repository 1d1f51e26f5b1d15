"""HTTP servers on loopback that behave as a hostile partner would, or as an internal service a partner aims at.

Each answers every request with ``answer(request)``; it records what it received and how many body bytes
it managed to send, so a test can tell whether we called it, followed it or read it whole.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    """What to send: a status, headers and a body, or a body produced piece by piece with pauses."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    body: bytes = b""
    #: Sent after the headers instead of ``body``: each piece, then a pause of ``pause`` seconds.
    pieces: Iterator[bytes] | None = None
    pause: float = 0.0
    length: int | None = None
    #: Called once every byte was sent, as a partner that commits only when its answer went out.
    on_sent: Callable[[], None] | None = None


class HostileServer:
    """A threaded HTTP/1.1 server on loopback."""

    def __init__(self, answer: Callable[[Request], Reply]) -> None:
        self.answer = answer
        self.received: list[Request] = []
        self.sent_bytes = 0
        #: Requests whose handling ended: the answer was sent whole, or the caller hung up while it went out.
        self.finished = 0
        self.lock = threading.Lock()
        self._finishing = threading.Condition(self.lock)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with server.lock:
                    server.received.append(request)
                try:
                    self._reply(server.answer(request))
                finally:
                    with server.lock:
                        server.finished += 1
                        server._finishing.notify_all()

            def _reply(self, reply: Reply) -> None:
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    size = reply.length if reply.length is not None else len(reply.body)
                    self.send_header("Content-Length", str(size))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.flush()
                    for piece in reply.pieces if reply.pieces is not None else iter([reply.body]):
                        self.wfile.write(piece)
                        self.wfile.flush()
                        with server.lock:
                            server.sent_bytes += len(piece)
                        if reply.pause:
                            time.sleep(reply.pause)
                except OSError:
                    return  # the caller hung up
                if reply.on_sent is not None:
                    reply.on_sent()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Whether every request received was handled to its end (sent, or hung up on) within ``timeout`` seconds."""
        with self._finishing:
            return self._finishing.wait_for(lambda: self.finished == len(self.received), timeout)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def ocpi_answer(data: Any = None, status_code: int = 1000, message: str = "Success") -> bytes:
    """An OCPI envelope as bytes."""
    return json.dumps(
        {"data": data, "status_code": status_code, "status_message": message, "timestamp": "2026-01-01T00:00:00Z"}
    ).encode()


def trickle(total: int, piece: bytes = b" ") -> Iterator[bytes]:
    """``total`` pieces, to be sent with a pause after each."""
    for _ in range(total):
        yield piece


def zeros(size: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """``size`` bytes of zeros in chunks."""
    left = size
    while left > 0:
        yield b"0" * min(chunk, left)
        left -= chunk


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
