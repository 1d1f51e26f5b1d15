"""Access from handlers to what the lifespan opened for this worker."""

from __future__ import annotations

from connexion import request

from maeve_api.storage import Storage


def storage() -> Storage:
    """The storage opened for this worker process by the app's lifespan."""
    opened: Storage = request.state.storage
    return opened
