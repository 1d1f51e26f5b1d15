"""One ASGI app for every listener: requests go to the app of the port they arrived on, lifespan to each."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maeve_api.ocpi.app import create_ocpi_app
from maeve_api.ocpp.app import create_ocpp_app
from maeve_api.storage import Storage, open_storage
from maeve_api.web.app import create_app
from maeve_api.web.shared_storage import SharedStorage

if TYPE_CHECKING:
    from maeve_api.settings import Settings


class PortDispatch:
    """Sends each request to the app serving the local port it arrived on (``scope["server"]``).

    Each app runs its own lifespan with its own state, so neither sees what the other opened. A request
    on any other port is answered 404.
    """

    def __init__(self, apps: Mapping[int, ASGIApp]) -> None:
        self.apps = dict(apps)
        self._states: dict[int, dict[str, Any]] = {port: {} for port in self.apps}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        server = scope.get("server") or (None, None)
        port = server[1]
        app = self.apps.get(port) if isinstance(port, int) else None
        if app is None or not isinstance(port, int):
            await _not_served(scope, send)
            return
        await app({**scope, "state": dict(self._states[port])}, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        runners = [_Lifespan(app, {**scope, "state": self._states[port]}) for port, app in self.apps.items()]
        for runner in runners:
            runner.start()
        message = await receive()
        assert message["type"] == "lifespan.startup"
        failures = [failure for failure in [await r.send("startup") for r in runners] if failure is not None]
        if failures:
            await send({"type": "lifespan.startup.failed", "message": "; ".join(failures)})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        failures = [failure for failure in [await r.send("shutdown") for r in runners] if failure is not None]
        if failures:
            await send({"type": "lifespan.shutdown.failed", "message": "; ".join(failures)})
        else:
            await send({"type": "lifespan.shutdown.complete"})


class _Lifespan:
    """One app's lifespan, driven event by event."""

    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self.app = app
        self.scope = scope
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            await self.app(self.scope, self.inbox.get, self.outbox.put)
        except Exception as exc:  # an app that fails its lifespan must not take the other one down
            await self.outbox.put({"type": "lifespan.failed", "message": f"{type(exc).__name__}: {exc}"})

    async def send(self, event: str) -> str | None:
        """Send ``lifespan.<event>`` and wait for the answer; returns the failure message, or None."""
        await self.inbox.put({"type": f"lifespan.{event}"})
        answer = await self.outbox.get()
        if answer["type"] == f"lifespan.{event}.complete":
            return None
        return str(answer.get("message") or answer["type"])


async def _not_served(scope: Scope, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = json.dumps({"status": "Not Found", "error": "nothing is served on this port"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_listeners(settings: Settings, opener: Callable[[], Storage] | None = None) -> PortDispatch:
    """The internal API, OCPI and OCPP apps of one worker, by port, over one storage they share.

    ``opener`` replaces opening ``settings.database_url``; it is called once per worker, when the first app
    starts (after gunicorn forks), and its storage is closed once, when the last app has stopped.
    """
    shared = SharedStorage(opener or (lambda: open_storage(settings.database_url)))
    return PortDispatch(
        {
            settings.api_port: create_app(settings, shared),
            settings.ocpi_port: create_ocpi_app(settings, shared),
            settings.ocpp_port: create_ocpp_app(settings, shared),
        }
    )
