"""ASGI middleware of the OCPI listener: every response echoes the request's X-Correlation-ID.

X-Request-ID is set and echoed on both listeners by ``maeve_api.request_log.RequestLog``.
"""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_HEADER = b"x-correlation-id"
# An id is echoed only if it is short and plain; otherwise the response carries a new one.
_PLAIN = re.compile(rb"[A-Za-z0-9._:+=/-]{1,128}")


class CorrelationHeaders:
    """Copies X-Correlation-ID from the request to the response, making one up if it is missing or unusable.

    The id is kept in ``scope["state"]["correlation_id"]`` for calls made on the request's behalf.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(_HEADER, b"")
        correlation_id = given if _PLAIN.fullmatch(given) else str(uuid.uuid4()).encode()
        scope.setdefault("state", {})["correlation_id"] = correlation_id.decode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER]
                message = {**message, "headers": [*kept, (_HEADER, correlation_id)]}
            await send(message)

        await self.app(scope, receive, send_with_id)
