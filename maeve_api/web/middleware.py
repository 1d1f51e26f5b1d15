"""ASGI middleware that refuses requests before they reach routing: bad paths, bodies too large or undeclared."""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Methods whose request body has no meaning; it is dropped.
_BODYLESS_METHODS = ("GET", "HEAD")
_BODY_HEADERS = (b"content-length", b"transfer-encoding", b"content-type")


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
      set, since Connexion's body validator treats a body without ``Content-Length`` as missing;
    - the body of a GET or HEAD, which has no meaning (RFC 9110, 9.3.1), is dropped, with or without a
      ``Content-Type``: the lookup is answered as the reference answers it, and the hot paths serve it;
    - an answer without a body (a 201 or 200 with nothing to say, a 204) carries no ``Content-Type``.
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
        if has_body and scope["method"] in _BODYLESS_METHODS:
            # In place, as below.
            scope["headers"] = [(name, value) for name, value in scope["headers"] if name not in _BODY_HEADERS]
            await self.app(scope, _no_body(receive), _typeless_when_empty(send, scope))
            return
        if has_body and b"content-type" not in headers:
            raise RefusedRequest(415, "Content-Type: is required with a body; send application/json")
        if chunked and length is None:
            body = await self._read_body(receive)
            # In place: the router records the matched operation in this same scope for the request log.
            scope["headers"] = [*scope["headers"], (b"content-length", str(len(body)).encode())]
            receive = _replay(body, receive)
        await self.app(scope, receive, _typeless_when_empty(send, scope))

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


def replay(first: Message, receive: Receive) -> Receive:
    """A receive channel that first yields the message ``first``, then whatever ``receive`` gives."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return first

    return replayed


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that first yields ``body`` as one message, then whatever ``receive`` gives."""
    return replay({"type": "http.request", "body": body, "more_body": False}, receive)


def _no_body(receive: Receive) -> Receive:
    """A receive channel that yields an empty body; the request's own body is never read."""
    return _replay(b"", receive)


def _typeless_when_empty(send: Send, scope: Scope) -> Send:
    """A send channel that drops ``Content-Type`` from an answer whose body turns out empty.

    The start of the answer is held until its first body message shows whether there is a body. A HEAD
    answer keeps its type, which describes the GET's body.
    """
    if scope["method"] == "HEAD":
        return send
    held: Message | None = None

    async def typeless(message: Message) -> None:
        nonlocal held
        if message["type"] == "http.response.start":
            held = message
            return
        if held is not None:
            if message["type"] == "http.response.body" and not message.get("body") and not message.get("more_body"):
                kept = [(name, value) for name, value in held.get("headers", ()) if name.lower() != b"content-type"]
                held = {**held, "headers": kept}
            start, held = held, None
            await send(start)
        await send(message)

    return typeless
