"""Fixtures that serve the app with gunicorn, as production does, on a store the test can also open."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from maeve_api.storage import Storage, open_storage
from tests.conftest import (
    PRELOAD,
    ServiceProcess,
    answering,
    keep_shared_fixture_users_together,
    module_store_url,
    start_gunicorn_process,
)

SYSTEM_ENGINES = ["sqlite", "nx27017"]
#: The production default: more than one worker, each becoming ready costs about 0.7 s of CPU.
WORKERS = 2
START_TIMEOUT = 60.0


@dataclass
class Service:
    """A running gunicorn serving the API: its base URL and its process."""

    url: str
    process: ServiceProcess
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the master and wait for it to exit; returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture(params=SYSTEM_ENGINES)
def database_url(request: pytest.FixtureRequest, make_storage_url: Callable[[str], str]) -> str:
    """A fresh store on each engine that gunicorn can open by URL."""
    url: str = make_storage_url(request.param)
    return url


@pytest.fixture
def store(database_url: str) -> Iterator[Storage]:
    """The test's own connection to the service's store."""
    storage = open_storage(database_url)
    yield storage
    storage.close()


def start_gunicorn(database_url: str, log: Path) -> Service:
    """Start gunicorn with WORKERS workers on the store and wait until it is ready; its output goes to ``log``.

    The app is preloaded: these tests are about serving and stopping. ``maeve-api serve`` (tests/system/test_console.py)
    starts it as production does, every worker loading the app on its own."""
    process, ports = start_gunicorn_process(
        database_url, log, {"MAEVE_WORKERS": str(WORKERS), "MAEVE_LOG_LEVEL": "warning", **PRELOAD}, forked=True
    )
    service = Service(f"http://127.0.0.1:{ports['api']}", process, log)
    if answering(process, [f"{service.url}/ready"], START_TIMEOUT):
        return service
    service.stop(signal.SIGKILL)
    raise RuntimeError(f"gunicorn did not become ready; its log:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def serve(database_url: str, tmp_path: Path) -> Iterator[Callable[[], Service]]:
    """Factory starting gunicorn on the test's store (again after a stop); every one is stopped at the end."""
    started: list[Service] = []

    def start() -> Service:
        log = tmp_path / f"gunicorn-{len(started)}.log"
        service = start_gunicorn(database_url, log)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture(scope="module", params=SYSTEM_ENGINES)
def shared_database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store, on each engine, for the tests of a module that share one service (each uses records of its own)."""
    return module_store_url(request, tmp_path_factory, "system")


@pytest.fixture(scope="module")
def shared_service(shared_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """gunicorn on the shared store, once per module and engine, for tests that neither stop it nor need it new."""
    service = start_gunicorn(shared_database_url, tmp_path_factory.mktemp("gunicorn") / "gunicorn.log")
    yield service
    service.stop()


@pytest.fixture(scope="module")
def shared_store(shared_database_url: str) -> Iterator[Storage]:
    """The tests' own connection to the shared service's store."""
    storage = open_storage(shared_database_url)
    yield storage
    storage.close()


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    keep_shared_fixture_users_together(items, Path(__file__).parent, "system")
