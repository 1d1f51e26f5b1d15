"""Start and stop the processes a run needs, all on 127.0.0.1: nx-27017 and gunicorn serving an ASGI app."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from bench.config import REPO

HOST = "127.0.0.1"
BIN = Path(sys.executable).parent
START_TIMEOUT = 60.0
STOP_TIMEOUT = 25.0
WORKERS_START_TIMEOUT = 15.0
GUNICORN_CONFIG = "python:maeve_api.gunicorn_conf"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` different free loopback ports."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on loopback ``port`` (read from /proc)."""
    try:
        inodes = {
            link[len("socket:[") : -1]
            for link in (os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir())
            if link.startswith("socket:[")
        }
        table = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    for line in table:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port and inode in inodes:  # 0A: LISTEN
            return True
    return False


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a process started with ``start_new_session`` and its children (its process group), by its id."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _tail(path: Path, characters: int = 3000) -> str:
    return path.read_text(errors="replace")[-characters:] if path.exists() else ""


class Nx27017:
    """An in-memory nx-27017 MongoDB wire-protocol server on a free loopback port."""

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        self.uri = ""

    def start(self) -> None:
        """Start it and wait until it answers ping; raises RuntimeError with its log if it does not."""
        log = self.directory / f"nx-27017-{self.name}.log"
        for _attempt in range(3):  # another process may take the free port before nx-27017 binds it
            port = free_port()
            command = [str(BIN / "nx-27017"), "--db", "memory", "-p", str(port), "--host", HOST]
            command += ["--log-file", str(log), "--pid-file", str(self.directory / f"nx-27017-{self.name}.pid")]
            with open(self.directory / f"nx-27017-{self.name}.out", "wb") as output:
                self.process = subprocess.Popen(
                    command,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.uri = f"mongodb://{HOST}:{port}"
            if self._wait_for_ping(port):
                return
            stop(self.process)
        raise RuntimeError(f"nx-27017 did not answer ping within {START_TIMEOUT} s; its log:\n{_tail(log)}")

    def _wait_for_ping(self, port: int) -> bool:
        """Whether our process listens on ``port`` and answers ping there."""
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        client: MongoClient[dict[str, Any]] = MongoClient(self.uri, serverSelectionTimeoutMS=200, connectTimeoutMS=200)
        with client as probe:
            while self.process.poll() is None and time.monotonic() < deadline:
                try:
                    if listens(self.process.pid, port):
                        probe.admin.command("ping")
                        return True
                except PyMongoError:
                    pass
                time.sleep(0.05)
        return False

    def database_url(self, database: str) -> str:
        return f"{self.uri}/{database}"

    def rss_mb(self) -> float:
        return rss_mb(self.process.pid) if self.process else 0.0

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


class Gunicorn:
    """gunicorn with uvicorn workers serving ``app`` (module:attribute) as production does, on a free port."""

    def __init__(self, name: str, app: str, database_url: str, workers: int, directory: Path) -> None:
        self.name = name
        self.app = app
        self.database_url = database_url
        self.workers = workers
        self.log = directory / f"gunicorn-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.ocpi_port = 0
        self.ocpp_port = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def command(self) -> list[str]:
        return [str(BIN / "gunicorn"), "-c", GUNICORN_CONFIG, self.app]

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "MAEVE_DATABASE_URL": self.database_url,
            "MAEVE_HOST": HOST,
            "MAEVE_API_PORT": str(self.port),
            # The OCPI and OCPP listeners are served by the same processes; they get free ports too and no load.
            "MAEVE_OCPI_PORT": str(self.ocpi_port),
            "MAEVE_OCPP_PORT": str(self.ocpp_port),
            "MAEVE_WORKERS": str(self.workers),
        }

    def start(self, same_ports: bool = False) -> None:
        """Start the master and wait until every worker has started; raises RuntimeError with the log if not.

        ``same_ports``: start again on the ports of the previous start (a restart that clients reconnect to).
        """
        for _attempt in range(3):  # another process may take the free port before gunicorn binds it
            if not same_ports:
                self.port, self.ocpi_port, self.ocpp_port = free_ports(3)
            with open(self.log, "ab" if same_ports else "wb") as output:
                self.process = subprocess.Popen(
                    self.command,
                    cwd=REPO,
                    env=self.environment(),
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if self._wait_until_ready():
                return
            stop(self.process)
        raise RuntimeError(f"{self.name}: gunicorn did not serve /health; its log:\n{_tail(self.log)}")

    def _wait_until_ready(self) -> bool:
        """Whether /health answers 200; then also waits a while for every worker to log that it started."""
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        # Another process may have taken the port first: only our master's socket counts.
        while not (listens(self.process.pid, self.port) and self._healthy()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        # /health comes from whichever worker is up first; the line is missing at log levels above info.
        deadline = time.monotonic() + WORKERS_START_TIMEOUT
        while self._started_workers() < self.workers and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.process.poll() is None

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _started_workers(self) -> int:
        # uvicorn logs this once per worker, after the lifespan opened the store.
        return self.log.read_text(errors="replace").count("Application startup complete")

    def worker_pids(self) -> list[int]:
        """The pids of the master's worker processes, from ps."""
        if self.process is None or self.process.poll() is not None:
            return []
        listed = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)], capture_output=True, text=True, check=False
        )
        return sorted(int(pid) for pid in listed.stdout.split())

    def worker_rss_mb(self) -> list[float]:
        """Resident memory of each worker in MB."""
        return [rss_mb(pid) for pid in self.worker_pids()]

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MB (ps reports KiB)."""
    listed = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True, check=False)
    return int(listed.stdout.strip() or 0) / 1024
