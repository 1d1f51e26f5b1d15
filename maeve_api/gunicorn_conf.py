"""gunicorn configuration, from the same settings the app reads."""

import atexit
import errno
import json
import logging
import os
import resource
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from maeve_api.settings import Settings, SettingsError
from maeve_api.storage import SchemaTooNew, check_schema_version


def _refuse(message: str) -> None:
    """Stop the start with one JSON line saying why, before anything was created or bound."""
    line = {"level": "ERROR", "logger": "maeve_api", "message": message, "timestamp": time.time()}
    sys.stderr.write(json.dumps(line) + "\n")
    sys.exit(2)


# Read (and checked) before anything is created, so that a bad environment leaves nothing behind.
try:
    _settings = Settings.from_env()
    _settings.check_store()
except SettingsError as _error:
    _refuse(str(_error))

# A store written by a newer release is refused before any worker opens (and would upgrade) anything.
try:
    check_schema_version(_settings.database_url)
except SchemaTooNew as _error:
    _refuse(str(_error))



def _raise_open_files_limit() -> None:
    """Raise the soft limit of open files to the hard one: every station holds a socket open (10,000 stations
    need more than the usual soft limit of 1,024). Set in the master, so that every worker inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # an infinite hard limit the kernel caps lower: keep the soft one
            pass


_raise_open_files_limit()

# Every worker writes its metric samples under one directory that /metrics sums up. It must be set
# before prometheus-client is first imported, here in the master, so that forked workers inherit it.
_METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_own_metrics_dir = _METRICS_DIR_VARIABLE not in os.environ
_master_pid = os.getpid()
if _own_metrics_dir:
    os.environ[_METRICS_DIR_VARIABLE] = tempfile.mkdtemp(prefix="maeve-metrics-")
else:
    # Samples left by an earlier run would be added to this one's.
    for _stale in Path(os.environ[_METRICS_DIR_VARIABLE]).glob("*.db"):
        _stale.unlink()


def _remove_metrics_dir() -> None:
    """Remove the metrics directory if this master made it (workers exit through here too, and keep it)."""
    if _own_metrics_dir and os.getpid() == _master_pid:
        shutil.rmtree(os.environ[_METRICS_DIR_VARIABLE], ignore_errors=True)


# Also when the start fails: a port that cannot be bound makes gunicorn call sys.exit.
atexit.register(_remove_metrics_dir)

from maeve_api.web.metrics import mark_worker_dead  # noqa: E402
from maeve_api.web.request_log import logging_config  # noqa: E402

_LISTENERS = {
    "MAEVE_API_PORT": (_settings.api_host, _settings.api_port),
    "MAEVE_OCPI_PORT": (_settings.ocpi_host, _settings.ocpi_port),
    "MAEVE_OCPP_PORT": (_settings.ocpp_host, _settings.ocpp_port),
}

# Every listener in every worker; maeve_api.asgi sends each request or websocket to the app of its port. The
# OCPP endpoint binds its own address (stations are outside the trusted network).
bind = [f"{host}:{port}" for host, port in _LISTENERS.values()]
workers = _settings.workers
worker_class = "uvicorn_worker.UvicornWorker"
# Storage is opened by each worker's lifespan, after the fork.
preload_app = False
# A worker silent for this long is killed and replaced; no request here takes more than a few seconds.
timeout = 30
# On SIGTERM, workers stop accepting and get this long to finish the requests in flight.
graceful_timeout = 20
keepalive = 5
loglevel = _settings.log_level
logconfig_dict = logging_config(_settings.log_level)
# The JSON lines name no thread, process or source line, so records need not look them up: the switches
# of the logging HOWTO's "Optimization" section, about 3% of an auth lookup's time.
logging.logThreads = False
logging.logProcesses = False
logging.logMultiprocessing = False
logging._srcfile = None
accesslog = None
control_socket_disable = True


def _in_use(host: str, port: int) -> bool:
    """Whether another process listens on ``host:port`` (bound as gunicorn binds, with SO_REUSEADDR)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False  # gunicorn reports an address it cannot resolve
    family, kind, protocol, _name, address = infos[0]
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def on_starting(server: Any) -> None:
    """Refuse to start, in one line, if a port is taken: gunicorn would retry each one five times."""
    for variable, (host, port) in _LISTENERS.items():
        if _in_use(host, port):
            server.log.error(f"{variable}: port {port} on {host} is already in use by another process")
            sys.exit(1)


def when_ready(server: Any) -> None:
    """One line saying what serves where: the store, each listener and the OCPI URL partners are given."""
    logging.getLogger("maeve_api").info("maeve-api started", extra=_settings.summary())


def child_exit(_server: Any, worker: Any) -> None:
    """Fold the samples of a worker that exited into the totals."""
    mark_worker_dead(worker.pid)


def on_exit(_server: Any) -> None:
    """Remove the metrics directory if this master made it."""
    _remove_metrics_dir()
