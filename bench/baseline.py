"""The bare-ASGI baseline: the benchmarked URLs answered from the same store the simplest way, no framework.

Served like the API (``gunicorn -c python:maeve_api.gunicorn_conf bench.baseline:app``), it opens
``MAEVE_DATABASE_URL`` in each worker's lifespan, after the fork, and calls the repositories directly:
in the event loop for SQLite, in the default thread pool for MongoDB. It validates nothing: it is the
ceiling that the API is compared against.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote

from maeve_api.domain.emaid import normalize_emaid
from maeve_api.storage import Storage, open_storage

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

BASE = "/api/v0"
JSON_HEADERS = [(b"content-type", b"application/json")]
TOKEN_WIRE_NAMES = {
    "uid": "uid",
    "country_code": "countryCode",
    "party_id": "partyId",
    "type": "type",
    "contract_id": "contractId",
    "visual_number": "visualNumber",
    "issuer": "issuer",
    "group_id": "groupId",
    "valid": "valid",
    "language_code": "languageCode",
    "cache_mode": "cacheMode",
}
TOKEN_STORED_NAMES = {wire: stored for stored, wire in TOKEN_WIRE_NAMES.items()}

_storage: Storage | None = None
_offload = False


def _wire_token(token: dict[str, Any]) -> dict[str, Any]:
    wire = {TOKEN_WIRE_NAMES[key]: value for key, value in token.items() if key in TOKEN_WIRE_NAMES}
    wire["lastUpdated"] = token["last_updated"].strftime("%Y-%m-%dT%H:%M:%SZ")
    return wire


def auth(storage: Storage, cs_id: str) -> Any:
    found = storage.charge_stations.find_auth(cs_id)
    if found is None:
        return None
    wire = {"securityProfile": found["security_profile"], "invalidUsernameAllowed": found["invalid_username_allowed"]}
    if "password_hash" in found:
        wire["base64SHA256Password"] = found["password_hash"]
    return wire


def certificate(storage: Storage, certificate_hash: str) -> Any:
    found = storage.certificates.find(certificate_hash)
    return None if found is None else {"certificate": found["pem"]}


def token(storage: Storage, uid: str) -> Any:
    found = storage.tokens.find(uid)
    return None if found is None else _wire_token(found)


def tokens(storage: Storage, query: str) -> Any:
    arguments = parse_qs(query)
    offset = int(arguments.get("offset", ["0"])[0])
    limit = int(arguments.get("limit", ["20"])[0])
    return [_wire_token(found) for found in storage.tokens.page(offset, limit)]


def put_token(storage: Storage, body: bytes) -> None:
    wire = json.loads(body)
    stored = {TOKEN_STORED_NAMES[key]: value for key, value in wire.items() if key in TOKEN_STORED_NAMES}
    stored["contract_id"] = normalize_emaid(stored["contract_id"])
    stored["last_updated"] = datetime.now(UTC)
    storage.tokens.put(stored)


async def _respond(send: Send, status: int, payload: Any = None) -> None:
    body = b"" if payload is None else json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _route(method: str, path: str) -> tuple[Callable[..., Any], str | bytes] | None:
    """The function answering ``method path`` and its path argument, or None."""
    if path == "/health":
        return (lambda _storage, _argument: {"status": "OK"}), ""
    if not path.startswith(BASE + "/"):
        return None
    parts = path[len(BASE) + 1 :].split("/")
    if method == "GET" and len(parts) == 3 and parts[0] == "cs" and parts[2] == "auth":
        return auth, unquote(parts[1])
    if method == "GET" and len(parts) == 2 and parts[0] == "certificate":
        return certificate, unquote(parts[1])
    if method == "GET" and len(parts) == 2 and parts[0] == "token":
        return token, unquote(parts[1])
    if parts == ["token"]:
        return (tokens, "") if method == "GET" else (put_token, "") if method == "POST" else None
    return None


async def _lifespan(receive: Receive, send: Send) -> None:
    global _storage, _offload
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # After gunicorn forked this worker: pymongo clients are not fork-safe.
            url = os.environ["MAEVE_DATABASE_URL"]
            _storage = open_storage(url)
            _offload = url.startswith("mongodb")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _storage is not None:
                _storage.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _call(handler: Callable[[Storage, Any], Any], storage: Storage, argument: Any) -> Any:
    """Run a repository call: inline for SQLite (microseconds, local), in a thread for a network store.

    Inline calls to a store a network round-trip away would let each worker wait for one request at a time.
    """
    if _offload:
        return await asyncio.get_running_loop().run_in_executor(None, handler, storage, argument)
    return handler(storage, argument)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI application."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    route = _route(scope["method"], scope["path"])
    if route is None or _storage is None:
        await _respond(send, 404, {"status": "Not Found"})
        return
    handler, argument = route
    if handler is put_token:
        argument = await _read_body(receive)
    elif handler is tokens:
        argument = scope["query_string"].decode()
    payload = await _call(handler, _storage, argument)
    if handler is put_token:
        await _respond(send, 201)
    elif payload is None:
        await _respond(send, 404, {"status": "Not Found"})
    else:
        await _respond(send, 200, payload)
