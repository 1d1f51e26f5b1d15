"""Access from handlers to what the lifespan opened for this worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from connexion.context import scope
from starlette.concurrency import run_in_threadpool

from maeve_api.settings import Settings
from maeve_api.storage import Storage

T = TypeVar("T")


def storage() -> Storage:
    """The storage opened for this worker process by the app's lifespan."""
    # The lifespan's state, as the server copies it into every request's scope. connexion.request would
    # build a whole request object for it, a tenth of a hot lookup's time.
    opened: Storage = scope["state"]["storage"]
    return opened


async def read(call: Callable[..., T], *args: object) -> T:
    """Run a store read: directly if the store answers in-process, else in the thread pool.

    The hot lookups are ``async def`` handlers that read through this, so that on SQLite they are
    served without a hop to a thread and back.
    """
    if storage().reads_in_process:
        return call(*args)
    return await run_in_threadpool(call, *args)


def settings() -> Settings:
    """The settings the app was built with."""
    configured: Settings = scope["state"]["settings"]
    return configured
