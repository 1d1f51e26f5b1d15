"""The OCPP endpoint under gunicorn with two workers, as production serves it, and stations played by the
``ocpp`` library (2.0.1 and 1.6) over ``websockets``."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
import websockets
from ocpp.exceptions import InternalError
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from maeve_api.storage import Storage, open_storage
from tests.conftest import (
    PRELOAD,
    ServiceProcess,
    answering,
    keep_shared_fixture_users_together,
    module_store_url,
    start_gunicorn_process,
)

WORKERS = 2
START_TIMEOUT = 30.0
HEARTBEAT_INTERVAL = 42
#: Short enough that timeouts and retries stay fast.
FAST_ENV = {
    "MAEVE_OCPP_HEARTBEAT_INTERVAL": str(HEARTBEAT_INTERVAL),
    "MAEVE_OCPP_CALL_TIMEOUT": "0.6",
    "MAEVE_OCPP_RETRY_SECONDS": "0.1",
    "MAEVE_OCPP_MAX_ATTEMPTS": "3",
}
PASSWORD = "correct-horse-battery"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def password_hash(password: str) -> str:
    return base64.b64encode(hashlib.sha256(password.encode()).digest()).decode()


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@dataclass
class OcppService:
    """gunicorn serving the API and the OCPP endpoint: their URLs, the process and its log."""

    api: str
    ws: str
    process: ServiceProcess
    log: Path
    database_url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def register(self, cs_id: str | None = None, *, profile: int = 0, password: str | None = PASSWORD,
                 invalid_username_allowed: bool = False) -> str:
        """Register a station (a new id unless given) and return its id."""
        cs_id = cs_id or f"cs-{uuid.uuid4().hex[:12]}"
        body: dict[str, Any] = {"securityProfile": profile, "invalidUsernameAllowed": invalid_username_allowed}
        if password is not None:
            body["base64SHA256Password"] = password_hash(password)
        response = requests.post(f"{self.api}/api/v0/cs/{quote(cs_id, safe='')}", json=body, timeout=5)
        assert response.status_code == 201, response.text
        return cs_id

    def post(self, path: str, body: Any) -> requests.Response:
        """A POST on a new connection, so that it may land on any worker."""
        return requests.post(f"{self.api}/api/v0{path}", json=body, headers={"Connection": "close"}, timeout=5)

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.api}/api/v0{path}", headers={"Connection": "close"}, timeout=5)


def start_service(database_url: str, directory: Path, env: dict[str, str] | None = None) -> OcppService:
    """Start gunicorn with two workers on the store and wait until both listeners answer."""
    log = directory / f"gunicorn-{uuid.uuid4().hex[:8]}.log"
    process, ports = start_gunicorn_process(
        database_url, log,
        {"MAEVE_WORKERS": str(WORKERS), "MAEVE_LOG_LEVEL": "info", **PRELOAD, **FAST_ENV, **(env or {})},
        forked=True,
    )
    api, ocpp = f"http://127.0.0.1:{ports['api']}", f"ws://127.0.0.1:{ports['ocpp']}"
    service = OcppService(api, ocpp, process, log, database_url)
    if answering(process, [f"{api}/ready", f"http://127.0.0.1:{ports['ocpp']}/health"], START_TIMEOUT):
        return service
    service.stop()
    raise RuntimeError(f"gunicorn did not become ready; its log:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="package", params=["sqlite", "nx27017"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh store, on each engine, shared by the tests of this directory."""
    return module_store_url(request, tmp_path_factory, "ocpp")


@pytest.fixture(scope="package")
def service(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OcppService]:
    """The service, once per engine for this directory's tests (each uses stations of its own)."""
    started = start_service(database_url, tmp_path_factory.mktemp("gunicorn"), {"MAEVE_OCPP_TRUST_PROXY": "true"})
    yield started
    started.stop()


@pytest.fixture(scope="package")
def store(database_url: str) -> Iterator[Storage]:
    """The tests' own connection to the service's store."""
    opened = open_storage(database_url)
    yield opened
    opened.close()


async def eventually(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05) -> Any:
    """Wait until ``check()`` (run in a thread: it may call the store) returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s; last value {value!r}")
        await asyncio.sleep(interval)


class _Recording:
    """What a test station shares: the CSMS calls it got, and how it should answer them."""

    def _setup(self) -> None:
        self.calls: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        #: action -> "error" (CallError), "silent" (answer after the CSMS gave up) or a status to answer.
        self.behaviour: dict[str, str] = {}
        #: SetVariables / ChangeConfiguration status by setting name.
        self.statuses: dict[str, str] = {}

    async def _record(self, action: str, payload: dict[str, Any]) -> str | None:
        self.calls.put_nowait((action, payload))
        mode = self.behaviour.get(action)
        if mode == "error":
            raise InternalError(description="station failure")
        if mode == "silent":
            await asyncio.sleep(1.0)
            return None
        return mode

    async def next_call(self, action: str | None = None, timeout: float = 5.0) -> tuple[str, dict[str, Any]]:
        """The next CSMS call (of ``action``, skipping others)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {action or 'call'} within {timeout} s")
            got = await asyncio.wait_for(self.calls.get(), remaining)
            if action is None or got[0] == action:
                return got

    async def no_call(self, within: float) -> None:
        """Assert that the CSMS sends nothing for ``within`` seconds."""
        with contextlib.suppress(TimeoutError):
            got = await asyncio.wait_for(self.calls.get(), within)
            raise AssertionError(f"unexpected call {got}")


class Station201(_Recording, ChargePoint201):
    """A 2.0.1 station: records every CSMS call and answers as its behaviour says."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._setup()

    @on("SetVariables")
    async def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        await self._record("SetVariables", {"set_variable_data": set_variable_data})
        results = []
        for item in set_variable_data:
            name = f"{item['component']['name']}/{item['variable']['name']}"
            results.append({"component": item["component"], "variable": item["variable"],
                            "attribute_type": item.get("attribute_type", "Actual"),
                            "attribute_status": self.statuses.get(name, "Accepted")})
        return result201.SetVariables(set_variable_result=results)

    @on("Reset")
    async def on_reset(self, **payload: Any) -> Any:
        return result201.Reset(status=await self._record("Reset", payload) or "Accepted")

    @on("InstallCertificate")
    async def on_install_certificate(self, **payload: Any) -> Any:
        return result201.InstallCertificate(status=await self._record("InstallCertificate", payload) or "Accepted")

    @on("TriggerMessage")
    async def on_trigger_message(self, **payload: Any) -> Any:
        return result201.TriggerMessage(status=await self._record("TriggerMessage", payload) or "Accepted")

    @on("CertificateSigned")
    async def on_certificate_signed(self, **payload: Any) -> Any:
        return result201.CertificateSigned(status=await self._record("CertificateSigned", payload) or "Accepted")

    async def boot(self) -> Any:
        return await self.call(
            call201.BootNotification(
                charging_station={"vendor_name": "Acme", "model": "Volt", "serial_number": "SN-1",
                                  "firmware_version": "1.2.3"},
                reason="PowerUp",
            ),
            suppress=False,
        )


class Station16(_Recording, ChargePoint16):
    """A 1.6 station with the security extension: records every CSMS call and answers as told."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._setup()
        self.data_transfer_answer = ("Accepted", '{"status": "Accepted"}')

    @on("ChangeConfiguration")
    async def on_change_configuration(self, key: str, value: str) -> Any:
        await self._record("ChangeConfiguration", {"key": key, "value": value})
        return result16.ChangeConfiguration(status=self.statuses.get(key, "Accepted"))

    @on("Reset")
    async def on_reset(self, **payload: Any) -> Any:
        return result16.Reset(status=await self._record("Reset", payload) or "Accepted")

    @on("InstallCertificate")
    async def on_install_certificate(self, **payload: Any) -> Any:
        return result16.InstallCertificate(status=await self._record("InstallCertificate", payload) or "Accepted")

    @on("TriggerMessage")
    async def on_trigger_message(self, **payload: Any) -> Any:
        return result16.TriggerMessage(status=await self._record("TriggerMessage", payload) or "Accepted")

    @on("CertificateSigned")
    async def on_certificate_signed(self, **payload: Any) -> Any:
        return result16.CertificateSigned(status=await self._record("CertificateSigned", payload) or "Accepted")

    @on("DataTransfer")
    async def on_data_transfer(self, **payload: Any) -> Any:
        await self._record("DataTransfer", payload)
        status, data = self.data_transfer_answer
        return result16.DataTransfer(status=status, data=data)

    async def boot(self) -> Any:
        return await self.call(
            call16.BootNotification(charge_point_vendor="Acme", charge_point_model="Volt",
                                    charge_point_serial_number="SN-16", firmware_version="9.9"),
            suppress=False,
        )


@contextlib.asynccontextmanager
async def connect(
    service: OcppService,
    cs_id: str,
    password: str | None = PASSWORD,
    *,
    version: str = "2.0.1",
    username: str | None = None,
    headers: dict[str, str] | None = None,
    boot: bool = False,
) -> AsyncIterator[Any]:
    """A station connected to the endpoint (and booted, if asked), its receive loop running."""
    sent = dict(headers or {})
    if password is not None:
        sent["Authorization"] = basic(username if username is not None else cs_id, password)
    async with websockets.connect(
        f"{service.ws}/ws/{quote(cs_id, safe='')}",
        subprotocols=[f"ocpp{version}"],  # type: ignore[list-item]
        additional_headers=sent,
        open_timeout=15,  # an upgrade while the store is down waits for its 2 s server selection, longer when busy
    ) as ws:
        station: Any = (Station201 if version == "2.0.1" else Station16)(cs_id, ws, response_timeout=5)
        station.ws = ws
        task = asyncio.create_task(station.start())
        try:
            if boot:
                await station.boot()
            yield station
        finally:
            task.cancel()


async def refused_with(service: OcppService, cs_id: str, password: str | None = PASSWORD, **kwargs: Any) -> int:
    """The HTTP status the upgrade is refused with (fails if it is accepted)."""
    try:
        async with connect(service, cs_id, password, **kwargs):
            pass
    except websockets.InvalidStatus as exc:
        return int(exc.response.status_code)
    raise AssertionError("the upgrade was accepted")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    keep_shared_fixture_users_together(items, Path(__file__).parent, "ocpp")
