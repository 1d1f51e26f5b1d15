"""gunicorn configuration, from the same settings the app reads."""

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

# Every worker writes its metric samples under one directory that /metrics sums up. It must be set
# before prometheus-client is first imported, here in the master, so that forked workers inherit it.
_METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_own_metrics_dir = _METRICS_DIR_VARIABLE not in os.environ
if _own_metrics_dir:
    os.environ[_METRICS_DIR_VARIABLE] = tempfile.mkdtemp(prefix="maeve-metrics-")
else:
    # Samples left by an earlier run would be added to this one's.
    for _stale in Path(os.environ[_METRICS_DIR_VARIABLE]).glob("*.db"):
        _stale.unlink()

from maeve_api.metrics import mark_worker_dead  # noqa: E402
from maeve_api.request_log import logging_config  # noqa: E402
from maeve_api.settings import Settings  # noqa: E402

_settings = Settings.from_env()

# Both listeners in every worker; maeve_api.asgi sends each request to the app of its port.
bind = [f"{_settings.api_host}:{_settings.api_port}", f"{_settings.ocpi_host}:{_settings.ocpi_port}"]
# The OCPP endpoint in the same workers, on its own address (stations are outside the trusted network).
bind.append(f"{_settings.ocpp_host}:{_settings.ocpp_port}")
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


def child_exit(_server: Any, worker: Any) -> None:
    """Fold the samples of a worker that exited into the totals."""
    mark_worker_dead(worker.pid)


def on_exit(_server: Any) -> None:
    """Remove the metrics directory if this master made it."""
    if _own_metrics_dir:
        shutil.rmtree(os.environ[_METRICS_DIR_VARIABLE], ignore_errors=True)
