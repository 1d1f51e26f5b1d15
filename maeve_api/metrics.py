"""Prometheus metrics: requests, latencies and store calls, aggregated across gunicorn workers.

Under gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` is set by ``gunicorn_conf`` before any worker starts,
so prometheus-client keeps each worker's samples in files there and ``/metrics`` sums them. In a
single process (tests, ``python -m``) the default in-memory registry is used.
"""

from __future__ import annotations

import os
from time import perf_counter
from typing import Any, cast

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from maeve_api.storage import (
    CertificateRepository,
    ChargeStationRepository,
    LocationRepository,
    RegistrationRepository,
    Storage,
    TokenRepository,
)

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# Buckets from 0.5 ms: the hot lookups take about a millisecond end to end.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

REQUESTS = Counter(
    "maeve_http_requests",
    "HTTP requests answered, by listener, operation, method and status code.",
    ("listener", "operation", "method", "status"),
)
REQUEST_LATENCY = Histogram(
    "maeve_http_request_duration_seconds",
    "Time from receiving a request to sending the end of its response.",
    ("listener", "operation"),
    buckets=_LATENCY_BUCKETS,
)
STORE_LATENCY = Histogram(
    "maeve_store_operation_duration_seconds",
    "Time spent in one storage repository call, by repository and method.",
    ("operation",),
    buckets=_LATENCY_BUCKETS,
)
STORE_ERRORS = Counter(
    "maeve_store_operation_errors",
    "Storage repository calls that raised, by repository, method and error type.",
    ("operation", "error"),
)


def observe_request(listener: str, operation: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its latency."""
    REQUESTS.labels(listener, operation, method, str(status)).inc()
    REQUEST_LATENCY.labels(listener, operation).observe(seconds)


class _TimedRepository:
    """Times every method call of one repository into STORE_LATENCY (errors into STORE_ERRORS)."""

    def __init__(self, name: str, repository: object) -> None:
        self._name = name
        self._repository = repository

    def __getattr__(self, attribute: str) -> Any:
        method = getattr(self._repository, attribute)
        if not callable(method):
            return method
        operation = f"{self._name}.{attribute}"
        latency = STORE_LATENCY.labels(operation)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = perf_counter()
            try:
                return method(*args, **kwargs)
            except Exception as exc:
                STORE_ERRORS.labels(operation, type(exc).__name__).inc()
                raise
            finally:
                latency.observe(perf_counter() - started)

        setattr(self, attribute, timed)  # later calls skip __getattr__
        return timed


class InstrumentedStorage(Storage):
    """A storage whose repository calls are timed; otherwise it is the wrapped storage."""

    def __init__(self, storage: Storage) -> None:
        self.wrapped = storage
        self.reads_in_process = storage.reads_in_process
        self.charge_stations = cast(
            ChargeStationRepository, _TimedRepository("charge_stations", storage.charge_stations)
        )
        self.tokens = cast(TokenRepository, _TimedRepository("tokens", storage.tokens))
        self.certificates = cast(CertificateRepository, _TimedRepository("certificates", storage.certificates))
        self.registrations = cast(RegistrationRepository, _TimedRepository("registrations", storage.registrations))
        self.locations = cast(LocationRepository, _TimedRepository("locations", storage.locations))

    def __getattr__(self, attribute: str) -> Any:
        # Repositories added to an engine later are reached untimed rather than missing.
        return getattr(self.wrapped, attribute)

    def ping(self) -> None:
        self.wrapped.ping()

    def close(self) -> None:
        self.wrapped.close()


def _registry() -> CollectorRegistry:
    """The registry to expose: every worker's samples under gunicorn, else this process's."""
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


async def metrics(_request: Request) -> Response:
    """The Prometheus text exposition of every metric."""
    body = await run_in_threadpool(generate_latest, _registry())
    return Response(body, 200, media_type=CONTENT_TYPE_LATEST)


def add_metrics(app: Any) -> None:
    """Serve ``GET /metrics`` on a Connexion app."""
    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])


def mark_worker_dead(pid: int) -> None:
    """Tell the multiprocess collector that a worker exited (gunicorn's child_exit hook)."""
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        prometheus_multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
