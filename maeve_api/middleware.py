"""ASGI middleware that refuses requests before they reach routing: bad paths, bodies too large or undeclared."""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RefusedRequest(HTTPException):
    """A request the guard refused; its detail already says exactly what was wrong."""


class RequestGuard:
    """Refuses what the router and validators would mishandle, each with a RefusedRequest the error mapping renders.

    - 404 for a path holding control characters, saying so: Connexion's route patterns do not match
      them (connexion#2094);
    - 413 for a body over ``max_body_bytes``, checked against ``Content-Length`` up front;
    - 415 for a body sent without a ``Content-Type``: Connexion would validate it as JSON and then
      hand the handler raw bytes;
    - a chunked body (no ``Content-Length``) is read up to the limit and passed on with its length
      set, since Connexion's body validator treats a body without ``Content-Length`` as missing.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _CONTROL.search(scope["path"]):
            raise RefusedRequest(404, "path: must not contain control characters")
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        if length is not None:
            if not length.isdigit():
                raise RefusedRequest(400, "Content-Length: must be a number")
            if int(length) > self.max_body_bytes:
                raise self._too_large()
        has_body = chunked or (length is not None and int(length) > 0)
        if has_body and b"content-type" not in headers:
            raise RefusedRequest(415, "Content-Type: is required with a body; send application/json")
        if chunked and length is None:
            body = await self._read_body(receive)
            # In place: the router records the matched operation in this same scope for the request log.
            scope["headers"] = [*scope["headers"], (b"content-length", str(len(body)).encode())]
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _too_large(self) -> RefusedRequest:
        return RefusedRequest(413, f"body: must be at most {self.max_body_bytes} bytes")

    async def _read_body(self, receive: Receive) -> bytes:
        """The whole request body, refused with 413 as soon as it passes the limit."""
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise RefusedRequest(400, "body: ended before it was complete")
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_body_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that first yields ``body`` as one message, then whatever ``receive`` gives."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
