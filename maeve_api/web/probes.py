"""Liveness and readiness probes, served beside the API on every listener."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from maeve_api.storage import Storage, StorageUnavailable
from maeve_api.web.problems import status_body

#: How long /ready waits for the store before calling it unavailable.
READY_TIMEOUT = 2.0


def _status(code: int, error: str | None = None) -> Response:
    return Response(status_body(code, error), code, media_type="application/json")


async def health(_request: Request) -> Response:
    """200 while the process is up; touches nothing else."""
    return _status(200)


async def ready(request: Request) -> Response:
    """200 when the store answers within READY_TIMEOUT, else 503 with a Status body."""
    storage: Storage = request.state.storage
    try:
        await asyncio.wait_for(run_in_threadpool(storage.ping), READY_TIMEOUT)
    except (StorageUnavailable, TimeoutError):
        return _status(503, "the data store is unavailable")
    return _status(200)


def add_probes(app: Any, readiness: bool = True) -> None:
    """Serve ``GET /health`` and, unless ``readiness`` is False, ``GET /ready`` on a Connexion app."""
    app.add_url_rule("/health", "health", health, methods=["GET"])
    if readiness:
        app.add_url_rule("/ready", "ready", ready, methods=["GET"])
