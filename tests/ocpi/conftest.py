"""Fixtures for the OCPI tests: instances of the service on loopback, and strict partners."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn

from maeve_api.ocpi.app import create_ocpi_app
from maeve_api.settings import Settings
from maeve_api.storage import Storage, open_storage
from maeve_api.web.app import create_app
from tests.conftest import free_port
from tests.ocpi.hostile import HostileServer
from tests.ocpi.partner import Partner

#: Short enough that the failure paths and retries stay fast.
FAST = {
    "ocpi_connect_timeout": 0.5,
    "ocpi_read_timeout": 0.8,
    "push_poll_seconds": 0.05,
    "push_lease_seconds": 5.0,
    "ocpi_call_deadline_seconds": 3.0,
    # The partners of the tests listen on loopback.
    "ocpi_allow_private_networks": True,
    "push_backoff_seconds": 0.05,
    "push_backoff_max_seconds": 0.2,
    "validate_responses": True,
}


class _Server(uvicorn.Server):
    """uvicorn looking for ``should_exit``, and for its connections to close, every 10 ms instead of every 100 ms:
    the tests stop hundreds of them."""

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter += 1
            await asyncio.sleep(0.01)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown, less its fixed 0.1 s sleep after asking the connections to close: stop accepting,
        ask every connection to close, wait for them and the requests in flight to finish, then the lifespan's."""
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        while self.server_state.connections or self.server_state.tasks:
            await asyncio.sleep(0.01)
        await self.lifespan.shutdown()


class Served:
    """An ASGI app served by uvicorn in a thread on loopback sockets, with its lifespan."""

    def __init__(self, app: Any, *sockets: socket.socket) -> None:
        self.server = _Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": list(sockets)}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def listening_socket(port: int | None = None) -> socket.socket:
    """A socket listening on loopback, on ``port`` or a free one: one of this process's own (``free_port``), so
    that no other socket is given it while a restart has it closed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", free_port() if port is None else port))
    sock.listen(64)
    return sock


@dataclass
class Instance:
    """One instance of the service: its store, its internal API (in-process) and its OCPI listener (on loopback)."""

    settings: Settings
    url: str
    publish: bool = True
    store: Storage = field(init=False)
    api: httpx2.Client = field(init=False)
    _served: Served | None = field(init=False, default=None)
    _port: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.store = self.open_store()
        self._api_app = create_app(self.settings, storage_factory=self.open_store)
        self._api_context = self._api_app.test_client(base_url="http://testserver/api/v0")
        self.api = self._api_context.__enter__()

    def open_store(self) -> Storage:
        """A new connection to the instance's store, as another worker would open."""
        return open_storage(self.url)

    @property
    def ocpi_url(self) -> str:
        return self.settings.ocpi_external_url

    @property
    def versions_url(self) -> str:
        return f"{self.ocpi_url}/ocpi/versions"

    def start_ocpi(self, sock: socket.socket) -> None:
        """Serve the OCPI app (a new one, as after a restart) on ``sock``."""
        app = create_ocpi_app(self.settings, storage_factory=self.open_store, publish=self.publish)
        self._served = Served(app, sock)

    def stop_ocpi(self) -> None:
        """Stop the OCPI listener and its publisher, as a shutdown does."""
        if self._served is not None:
            self._served.stop()
            self._served = None

    def restart_ocpi(self) -> None:
        """Start the OCPI listener again on its port."""
        self.start_ocpi(listening_socket(int(self.ocpi_url.rsplit(":", 1)[1])))

    def close(self) -> None:
        self.stop_ocpi()
        self._api_context.__exit__(None, None, None)
        self.store.close()


@pytest.fixture
def make_instance(tmp_path: Path, make_storage_url: Callable[[str], str]) -> Iterator[Callable[..., Instance]]:
    """Factory ``make_instance(party_id="CPO", engine="sqlite", **settings)``: a running instance on a fresh store."""
    made: list[Instance] = []

    def make(
        party_id: str = "CPO", country_code: str = "GB", publish: bool = True, engine: str = "sqlite", **overrides: Any
    ) -> Instance:
        sock = listening_socket()
        port = sock.getsockname()[1]
        settings = replace(
            Settings(),
            database_url=f"sqlite:///{tmp_path}/unused.db",
            ocpi_external_url=f"http://127.0.0.1:{port}",
            ocpi_country_code=country_code,
            ocpi_party_id=party_id,
            ocpi_business_name=f"CSMS {party_id}",
            **{**FAST, **overrides},
        )
        instance = Instance(settings, make_storage_url(engine), publish)
        made.append(instance)
        instance.start_ocpi(sock)
        return instance

    yield make
    for instance in made:
        instance.close()


@pytest.fixture
def make_partner() -> Iterator[Callable[..., Partner]]:
    """Factory of strict eMSPs served on loopback; the test fails if any of them saw a deviation."""
    made: list[Partner] = []

    def make(**options: Any) -> Partner:
        partner = Partner(**options)
        partner.start()
        made.append(partner)
        return partner

    yield make
    for partner in made:
        partner.stop()
    deviations = [d for partner in made for d in partner.deviations]
    assert deviations == [], deviations


def wait_for(condition: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll ``condition`` until it is truthy; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def make_hostile_server() -> Iterator[Callable[..., HostileServer]]:
    """Factory of loopback HTTP servers answering every request with ``answer(request)``; stopped afterwards."""
    made: list[HostileServer] = []

    def make(answer: Callable[..., Any]) -> HostileServer:
        server = HostileServer(answer)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()
