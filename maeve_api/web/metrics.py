"""Prometheus metrics: requests, latencies and store calls, aggregated across gunicorn workers.

Under gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` is set by ``gunicorn_conf`` before any worker starts,
so prometheus-client keeps each worker's samples in files there and ``/metrics`` sums them. In a
single process (tests, ``python -m``) the default in-memory registry is used.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from time import perf_counter
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.core import GaugeMetricFamily
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from maeve_api.storage import NotFound, Storage, StorageError

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
    "Storage repository calls that failed, by repository, method and error type (not found is not a failure).",
    ("operation", "error"),
)


PUSHES = Counter(
    "maeve_ocpi_pushes",
    "Location pushes to OCPI partners, by party and result (ok or failed).",
    ("party", "result"),
)
PUSH_FINAL_FAILURES = Counter(
    "maeve_ocpi_push_final_failures",
    "Location pushes given up, by party and reason: refused (the partner answered 4xx or OCPI 2xxx) "
    "or expired (failing for longer than the retry period).",
    ("party", "reason"),
)


@functools.cache
def _request_series(listener: str, operation: str, method: str, status: int) -> tuple[Any, Any]:
    """The request counter and latency histogram of one label set, looked up once.

    prometheus-client's ``labels`` takes a lock and builds a key on every call. The label values are
    bounded: listeners, the spec's operations, the methods the HTTP parser accepts and status codes.
    """
    return REQUESTS.labels(listener, operation, method, str(status)), REQUEST_LATENCY.labels(listener, operation)


def observe_request(listener: str, operation: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its latency."""
    count, latency = _request_series(listener, operation, method, status)
    count.inc()
    latency.observe(seconds)


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
            except NotFound:  # an ordinary answer (a lookup of an unknown id), not a failure of the store
                raise
            except Exception as exc:
                STORE_ERRORS.labels(operation, type(exc).__name__).inc()
                raise
            finally:
                latency.observe(perf_counter() - started)

        setattr(self, attribute, timed)  # later calls skip __getattr__
        return timed


#: The repository attributes of the storage interface, each timed under its name.
REPOSITORIES = tuple(name for name, kind in Storage.__annotations__.items() if str(kind).endswith("Repository"))


class InstrumentedStorage(Storage):
    """A storage whose repository calls are timed; otherwise it is the wrapped storage."""

    def __init__(self, storage: Storage) -> None:
        self.wrapped = storage
        self.reads_in_process = storage.reads_in_process
        for name in REPOSITORIES:
            setattr(self, name, _TimedRepository(name, getattr(storage, name)))

    def ping(self) -> None:
        self.wrapped.ping()

    def close(self) -> None:
        self.wrapped.close()


class _Outbox:
    """The outbox's depth per party, read from the store when scraped."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "maeve_ocpi_outbox_entries", "Location pushes waiting to be delivered, by party.", labels=("party",)
        )
        try:
            waiting = self.storage.pushes.waiting_by_party()
        except StorageError:
            return  # the store's own unavailability shows in /ready and the store metrics
        for party, count in sorted(waiting.items()):
            family.add_metric((party,), count)
        yield family


def _registry() -> CollectorRegistry:
    """The registry to expose: every worker's samples under gunicorn, else this process's."""
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def _exposition(storage: Storage) -> bytes:
    outbox = CollectorRegistry(auto_describe=False)
    outbox.register(_Outbox(storage))
    return generate_latest(_registry()) + generate_latest(outbox)


async def metrics(request: Request) -> Response:
    """The Prometheus text exposition of every metric, the outbox's depth included."""
    body = await run_in_threadpool(_exposition, request.state.storage)
    return Response(body, 200, media_type=CONTENT_TYPE_LATEST)


def add_metrics(app: Any) -> None:
    """Serve ``GET /metrics`` on a Connexion app."""
    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])


def mark_worker_dead(pid: int) -> None:
    """Tell the multiprocess collector that a worker exited (gunicorn's child_exit hook)."""
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        prometheus_multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
