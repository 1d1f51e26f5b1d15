"""ASGI middleware of the OCPI listener: every response echoes the request's X-Correlation-ID, partners'
requests are read as OCPI peers send them, and functional-module answers carry the routing headers.

X-Request-ID is set and echoed on both listeners by ``maeve_api.web.request_log.RequestLog``.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maeve_api.web.middleware import replay

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


_VERSION_SEGMENT = re.compile(r"/ocpi/([0-9]+(?:\.[0-9]+)*)(?:/|$)")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _without_nulls(value: Any) -> Any:
    """``value`` with every object member that is null left out, at any depth."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


class PartnerRequests:
    """Reads partners' requests as OCPI peers send them, before routing and validation:

    - a path with a trailing slash is routed as the path without it (instead of a redirect);
    - a path under a version we do not serve (``/ocpi/2.1.1``) is 404;
    - a JSON body's null members are absent, as OCPI means them (peers send every unset optional field as null).
    """

    def __init__(self, app: ASGIApp, versions: tuple[str, ...]) -> None:
        self.app = app
        self.versions = versions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/") or "/"
            scope["path"] = path
            scope["raw_path"] = path.encode()
        version = _VERSION_SEGMENT.match(path)
        if version is not None and version.group(1) not in self.versions:
            raise HTTPException(404, f"OCPI version {version.group(1)} is not served here")
        if scope["method"] in _BODY_METHODS and b"json" in dict(scope["headers"]).get(b"content-type", b""):
            receive = await self._nulls_as_absent(scope, receive)
        await self.app(scope, receive, send)

    @staticmethod
    async def _nulls_as_absent(scope: Scope, receive: Receive) -> Receive:
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return replay(message, receive)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            parsed = None  # left to the validators, which say what is wrong with it
        else:
            if isinstance(parsed, dict | list):
                cleaned = _without_nulls(parsed)
                if cleaned != parsed:
                    body = json.dumps(cleaned, ensure_ascii=True).encode()
                    kept = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
                    scope["headers"] = [*kept, (b"content-length", str(len(body)).encode())]
        return replay({"type": "http.request", "body": body, "more_body": False}, receive)


class RoutingHeaders:
    """Adds OCPI's routing headers to the answers of the functional modules: ``OCPI-from-*`` is this platform,
    ``OCPI-to-*`` the calling party (the identity its request came from when it named one of its own)."""

    def __init__(self, app: ASGIApp, country_code: str, party_id: str) -> None:
        self.app = app
        self.ours = [(b"ocpi-from-country-code", country_code.encode()), (b"ocpi-from-party-id", party_id.encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        said = (
            headers.get(b"ocpi-from-country-code", b"").decode().upper(),
            headers.get(b"ocpi-from-party-id", b"").decode().upper(),
        )

        async def send_with_routing(message: Message) -> None:
            identities = scope.get("state", {}).get("ocpi_identities")
            if message["type"] == "http.response.start" and identities:
                chosen = next((i for i in identities if (i[0].upper(), i[1].upper()) == said), identities[0])
                extra = [
                    *self.ours,
                    (b"ocpi-to-country-code", chosen[0].encode()),
                    (b"ocpi-to-party-id", chosen[1].encode()),
                ]
                kept = [(k, v) for k, v in message.get("headers", []) if not k.lower().startswith(b"ocpi-")]
                message = {**message, "headers": [*kept, *extra]}
            await send(message)

        await self.app(scope, receive, send_with_routing)
