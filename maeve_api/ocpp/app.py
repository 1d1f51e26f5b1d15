"""The OCPP endpoint as an ASGI app: the websocket upgrade with authentication, one session per station,
and each worker's poller that wakes the sessions of its stations when something is staged for them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from starlette.types import Receive, Scope, Send

from maeve_api.ocpp.auth import Refusal, authenticate
from maeve_api.ocpp.ca import CertificateAuthority
from maeve_api.ocpp.connection import AsgiWebSocket, Closed
from maeve_api.ocpp.delivery import DeliveryReader, Session, in_thread
from maeve_api.ocpp.stations import SILENT, Station16, Station201
from maeve_api.settings import Settings
from maeve_api.storage import Storage, StorageError, open_storage
from maeve_api.web.metrics import InstrumentedStorage

log = logging.getLogger(__name__)

#: Subprotocols offered, in our order of preference, and the OCPP version each means.
SUBPROTOCOLS = {"ocpp2.0.1": "2.0.1", "ocpp1.6": "1.6"}
#: OCPP: a station id is at most 48 characters and has no ':'.
_PATH = re.compile(r"^/ws/([^/]+)$")
MAX_CS_ID = 48
#: How often each worker writes the last_seen of its stations that sent something, in one write.
TOUCH_FLUSH_SECONDS = 5.0


class Hub:
    """This worker's connected stations, the poller that finds what was staged for them, the reads of their
    staged items (one read for every station that asks at once) and their last_seen (written together)."""

    def __init__(self, storage: Storage, settings: Settings) -> None:
        self.storage = storage
        self.settings = settings
        self.sessions: dict[str, Session] = {}
        self.closers: dict[str, Callable[[], Any]] = {}
        self.deliveries = DeliveryReader(storage)
        self._poller: asyncio.Task[None] | None = None
        self._toucher: asyncio.Task[None] | None = None
        self._seen: dict[str, datetime] = {}
        #: Closings in progress, referenced until done so they are not collected half-way.
        self._closing: set[asyncio.Future[Any]] = set()

    def start(self) -> None:
        self._poller = asyncio.ensure_future(self._poll())
        self._toucher = asyncio.ensure_future(self._touch())

    async def stop(self) -> None:
        for task in (self._poller, self._toucher):
            if task is not None:
                task.cancel()
        for close in list(self.closers.values()):
            with contextlib.suppress(Exception):
                await close()
        # Give the closed connections a moment to record that they are gone before the store closes.
        for _ in range(50):
            if not self.sessions:
                break
            await asyncio.sleep(0.02)
        with contextlib.suppress(StorageError):
            await self._write_seen()

    def seen(self, cs_id: str) -> None:
        """The station sent something now: its last_seen is written with the next flush."""
        self._seen[cs_id] = datetime.now(UTC)

    async def _touch(self) -> None:
        while True:
            await asyncio.sleep(TOUCH_FLUSH_SECONDS)
            try:
                await self._write_seen()
            except StorageError as exc:
                log.warning("writing last_seen failed: %s", type(exc).__name__)
            except Exception:
                log.exception("writing last_seen failed")

    async def _write_seen(self) -> None:
        seen, self._seen = self._seen, {}
        if not seen:
            return
        try:
            await in_thread(self.storage.ocpp.touch_many, seen)
        except BaseException:
            for cs_id, at in seen.items():  # kept for the next flush, unless a later time came meanwhile
                self._seen.setdefault(cs_id, at)
            raise

    async def _poll(self) -> None:
        # The cursor is taken before any station is served here: a station that connects later reads what is
        # staged for it itself, and every change after the cursor is seen by the polls.
        cursor: object | None = None
        while cursor is None:
            try:
                _nothing, cursor = await in_thread(self.storage.ocpp.changes, None)
            except StorageError as exc:
                log.warning("looking for staged changes failed: %s", type(exc).__name__)
                await asyncio.sleep(self.settings.ocpp_poll_seconds)
        while True:
            await asyncio.sleep(self.settings.ocpp_poll_seconds)
            try:
                changes, cursor = await in_thread(self.storage.ocpp.changes, cursor)
            except StorageError as exc:
                log.warning("looking for staged changes failed: %s", type(exc).__name__)
                continue
            except Exception:
                log.exception("looking for staged changes failed")
                continue
            for change in changes:
                session = self.sessions.get(change["cs_id"])
                if session is None or change["seq"] <= session.seen_seq:
                    continue
                session.seen_seq = change["seq"]
                if change.get("connection") != session.connection_id:
                    # The station connected again, through another worker: this connection is stale.
                    close = self.closers.get(session.cs_id)
                    if close is not None:
                        closing = asyncio.ensure_future(close())
                        self._closing.add(closing)
                        closing.add_done_callback(self._closing.discard)
                else:
                    session.wake()


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        headers[name.decode("latin-1").lower()] = value.decode("latin-1")
    return headers


async def _deny(scope: Scope, send: Send, status: int, reason: str) -> None:
    body = json.dumps({"status": reason}).encode()
    if "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:  # the server answers 403
        await send({"type": "websocket.close", "code": 1008})


_REASONS = {401: "Unauthorized", 404: "Not Found", 503: "Service Unavailable"}
_SPURIOUS = "ASGI callable returned without completing handshake."


class _DenialFilter(logging.Filter):
    """Drops two kinds of uvicorn records: the error its websockets protocol logs after every denial response
    sent with the ASGI ``websocket.http.response`` extension, which it supports (it never marks that handshake
    as done), and its per-websocket access lines, which carry the query string a station sent. The endpoint
    logs each connection and refusal itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith('%s - "WebSocket %s"'):
            return False
        return record.getMessage() != _SPURIOUS


class OcppApp:
    """ASGI app of the OCPP listener: ``/ws/{csId}`` websockets, ``/health`` over HTTP."""

    def __init__(self, settings: Settings, storage_factory: Callable[[], Storage] | None = None) -> None:
        logging.getLogger("uvicorn.error").addFilter(_DenialFilter())
        self.settings = settings
        self.storage_factory = storage_factory or (lambda: open_storage(settings.database_url))
        self.storage: Storage | None = None
        self.hub: Hub | None = None
        self.ca = (
            CertificateAuthority.from_files(settings.ocpp_ca_cert, settings.ocpp_ca_key)
            if settings.ocpp_ca_cert and settings.ocpp_ca_key
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    # Opened per worker, after gunicorn forks.
                    self.storage = InstrumentedStorage(self.storage_factory())
                    self.hub = Hub(self.storage, self.settings)
                    self.hub.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.hub is not None:
                    await self.hub.stop()
                if self.storage is not None:
                    self.storage.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, send: Send) -> None:
        status, body = (200, {"status": "OK"}) if scope.get("path") == "/health" else (
            426, {"status": "Upgrade Required", "error": "connect with a websocket to /ws/{csId}"})
        encoded = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(encoded)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": encoded})

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.storage is None or self.hub is None:
            await _deny(scope, send, 503, _REASONS[503])
            return
        storage, hub = self.storage, self.hub
        match = _PATH.match(scope.get("raw_path", b"").decode("latin-1").split("?")[0] or scope.get("path", ""))
        cs_id = unquote(match.group(1)) if match else ""
        if not match or not 1 <= len(cs_id) <= MAX_CS_ID or ":" in cs_id or not cs_id.isprintable():
            log.info("OCPP upgrade refused: not /ws/{csId} with a valid station id")
            await _deny(scope, send, 404, _REASONS[404])
            return
        await receive()  # websocket.connect
        headers = _headers(scope)
        try:
            refusal: Refusal | None = await in_thread(
                lambda: authenticate(
                    storage,
                    cs_id,
                    headers,
                    # uvicorn rewrites the scheme from X-Forwarded-Proto sent from loopback: only a scheme
                    # no such header could have set is TLS of our own.
                    secure_transport=scope.get("scheme") == "wss" and "x-forwarded-proto" not in headers,
                    trust_proxy=self.settings.ocpp_trust_proxy,
                )
            )
        except StorageError as exc:
            log.warning("OCPP upgrade of %s refused: store unavailable (%s)", cs_id, type(exc).__name__)
            await _deny(scope, send, 503, _REASONS[503])
            return
        if refusal is not None:
            log.info("OCPP upgrade of %s refused with %d: %s", cs_id, refusal.status, refusal.reason)
            await _deny(scope, send, refusal.status, _REASONS[refusal.status])
            return
        offered = [p.strip() for p in scope.get("subprotocols", [])]
        chosen = next((p for p in SUBPROTOCOLS if p in offered), None)
        if chosen is None:
            # OCPP-J: with no subprotocol agreed the server completes the handshake without one and closes.
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1002, "reason": "no supported OCPP subprotocol"})
            log.info("OCPP connection of %s closed: no supported subprotocol offered", cs_id)
            return
        version = SUBPROTOCOLS[chosen]
        await send({"type": "websocket.accept", "subprotocol": chosen})
        await self._serve(cs_id, version, AsgiWebSocket(receive, send, version), storage, hub)

    async def _serve(self, cs_id: str, version: str, socket: AsgiWebSocket, storage: Storage, hub: Hub) -> None:
        previous = hub.closers.get(cs_id)
        if previous is not None:  # one connection per station: the new one replaces the old
            await previous()
        connection_id = uuid.uuid4().hex
        try:
            runtime = await in_thread(storage.ocpp.connect, cs_id, connection_id, version, datetime.now(UTC))
        except StorageError as exc:
            log.warning("OCPP connection of %s closed: store unavailable (%s)", cs_id, type(exc).__name__)
            await socket.close(1011, "store unavailable")
            return
        station_class = Station201 if version == "2.0.1" else Station16
        station: Any = station_class(cs_id, socket, response_timeout=self.settings.ocpp_call_timeout, logger=SILENT)
        session = Session(
            cs_id=cs_id,
            version=version,
            connection_id=connection_id,
            charge_point=station,
            storage=storage,
            settings=self.settings,
            booted="last_boot" in runtime,
            seq=int(runtime.get("seq", 0)),
            read=hub.deliveries.read,
        )
        station.session = session
        station.storage = storage
        station.seen = hub.seen
        station.connected_now()  # connect wrote last_seen
        station.heartbeat_interval = self.settings.ocpp_heartbeat_interval
        station.ca = self.ca
        runner = asyncio.current_task()

        ending = False

        async def close() -> None:
            await socket.close(1000, "replaced by a new connection")
            if not ending and runner is not None and runner is not asyncio.current_task():
                runner.cancel()

        hub.sessions[cs_id] = session
        hub.closers[cs_id] = close
        log.info("OCPP %s connected: %s", version, cs_id)
        socket.start()
        session.start()
        try:
            await station.start()
        except (Closed, asyncio.CancelledError):
            pass
        finally:
            ending = True
            session.stop()
            await socket.close()
            with contextlib.suppress(StorageError):
                await in_thread(storage.ocpp.disconnect, cs_id, connection_id, datetime.now(UTC))
            if hub.sessions.get(cs_id) is session:
                del hub.sessions[cs_id]
                del hub.closers[cs_id]
            log.info("OCPP %s disconnected: %s", version, cs_id)


def create_ocpp_app(settings: Settings, storage_factory: Callable[[], Storage] | None = None) -> OcppApp:
    """Build the OCPP endpoint for ``settings``; storage opens when the app's lifespan starts."""
    return OcppApp(settings, storage_factory)
