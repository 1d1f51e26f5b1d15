"""One ASGI app for both listeners: each port reaches only its own app, and both lifespans run."""

from __future__ import annotations

import asyncio

import requests

from maeve_api.ocpi.app import create_ocpi_app
from maeve_api.settings import Settings
from maeve_api.storage.sqlite import SqliteStorage
from maeve_api.web.app import create_app
from maeve_api.web.listeners import PortDispatch, create_listeners
from tests.ocpi.conftest import Served, listening_socket


def test_each_port_reaches_its_own_app(tmp_path):
    """The internal API and OCPI answer on their own ports only, each with its storage opened by its lifespan."""
    api_socket, ocpi_socket = listening_socket(), listening_socket()
    api_port, ocpi_port = api_socket.getsockname()[1], ocpi_socket.getsockname()[1]
    settings = Settings(database_url=f"sqlite:///{tmp_path}/both.db", api_port=api_port, ocpi_port=ocpi_port)
    app = PortDispatch({api_port: create_app(settings), ocpi_port: create_ocpi_app(settings)})
    served = Served(app, api_socket, ocpi_socket)
    try:
        api, ocpi = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{ocpi_port}"
        assert requests.get(f"{api}/ready", timeout=3).status_code == 200
        assert requests.get(f"{ocpi}/health", timeout=3).status_code == 200
        for path in ("/ready", "/metrics", "/ocpi/openapi.json"):
            refused = requests.get(f"{ocpi}{path}", timeout=3)
            assert refused.status_code in (401, 404) and "paths" not in refused.json(), path
            assert requests.get(f"{api}{path}", timeout=3).status_code == 200, path
        assert requests.get(f"{api}/api/v0/token/T1", timeout=3).json()["status"] == "Not Found"
        versions = requests.get(f"{ocpi}/ocpi/versions", timeout=3)
        assert (versions.status_code, versions.json()["status_code"]) == (401, 2000)
        # The unauthenticated internal API is not reachable through the OCPI port, nor OCPI through the API's.
        assert requests.get(f"{ocpi}/api/v0/token/T1", timeout=3).json()["status_code"] == 2000
        assert requests.get(f"{api}/ocpi/versions", timeout=3).json()["status"] == "Not Found"
    finally:
        served.stop()
    assert not served.thread.is_alive()


def test_a_request_on_another_port_is_404():
    """A request that arrived on a port no app serves is answered 404 with a Status body."""
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def never(scope, receive, send) -> None:
        raise AssertionError("not this app")

    scope = {"type": "http", "server": ("127.0.0.1", 1234), "path": "/", "headers": []}
    asyncio.run(PortDispatch({9410: never})(scope, receive, send))
    assert sent[0]["status"] == 404
    assert sent[1]["body"] == b'{"status": "Not Found", "error": "nothing is served on this port"}'


def test_every_listener_of_a_worker_shares_one_storage_opened_and_closed_once(tmp_path):
    """The API, OCPI and OCPP apps of one worker open one storage at start-up and close it once at shutdown."""
    opened: list[SqliteStorage] = []
    closed: list[SqliteStorage] = []

    class Counted(SqliteStorage):
        def close(self) -> None:
            closed.append(self)
            super().close()

    def opener() -> SqliteStorage:
        opened.append(Counted(tmp_path / "shared.db"))
        return opened[-1]

    settings = Settings(database_url=f"sqlite:///{tmp_path}/unused.db", api_port=1, ocpi_port=2, ocpp_port=3)
    app = create_listeners(settings, opener)
    events = asyncio.Queue()
    sent: list[dict] = []
    seen: dict[str, object] = {}

    async def send(message) -> None:
        sent.append(message)

    async def run() -> None:
        events.put_nowait({"type": "lifespan.startup"})
        lifespan = asyncio.ensure_future(app({"type": "lifespan", "state": {}}, events.get, send))
        while not sent:
            await asyncio.sleep(0.01)
        seen["opened while serving"] = len(opened)
        seen["closed while serving"] = len(closed)
        events.put_nowait({"type": "lifespan.shutdown"})
        await lifespan

    asyncio.run(run())
    assert [message["type"] for message in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert seen == {"opened while serving": 1, "closed while serving": 0}
    assert len(opened) == 1 and closed == opened
    assert not (tmp_path / "unused.db").exists()
