"""Fixtures that serve the app with gunicorn, as production does, on a store the test can also open."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from maeve_api.storage import Storage, open_storage
from tests.conftest import free_port

SYSTEM_ENGINES = ["sqlite", "nx27017"]
WORKERS = 3
START_TIMEOUT = 20.0


@dataclass
class Service:
    """A running gunicorn serving the API: its base URL and its process."""

    url: str
    process: subprocess.Popen[bytes]
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


@pytest.fixture
def serve(database_url: str, tmp_path: Path) -> Iterator[Callable[[], Service]]:
    """Factory starting gunicorn on the test's store (again after a stop); every one is stopped at the end."""
    started: list[Service] = []

    def start() -> Service:
        port = free_port()
        env = {
            **os.environ,
            "MAEVE_DATABASE_URL": database_url,
            "MAEVE_API_PORT": str(port),
            "MAEVE_OCPI_PORT": str(free_port()),
            # Never the default 9310, which another server on the machine may hold.
            "MAEVE_OCPP_PORT": str(free_port()),
            "MAEVE_WORKERS": str(WORKERS),
            "MAEVE_LOG_LEVEL": "warning",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        log = tmp_path / f"gunicorn-{len(started)}.log"
        gunicorn = Path(sys.executable).parent / "gunicorn"
        with open(log, "wb") as output:
            process = subprocess.Popen(
                [str(gunicorn), "-c", "python:maeve_api.gunicorn_conf", "maeve_api.asgi:app"],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        service = Service(f"http://127.0.0.1:{port}", process, log)
        started.append(service)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if requests.get(f"{service.url}/ready", timeout=1).status_code == 200:
                    return service
            except (requests.ConnectionError, requests.Timeout):  # still booting
                pass
            time.sleep(0.1)
        service.stop(signal.SIGKILL)
        raise RuntimeError(f"gunicorn did not become ready; its log:\n{log.read_text(errors='replace')[-3000:]}")

    yield start
    for service in started:
        service.stop()
