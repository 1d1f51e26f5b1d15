"""One storage per worker process, shared by the apps of every listener (internal API, OCPI, OCPP)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from maeve_api.storage import Storage


class SharedStorage:
    """A storage factory for several apps: the first app to start opens the storage, the last to stop closes it.

    Each app's lifespan calls the factory, so the storage is opened in the worker, after gunicorn forks
    (pymongo clients are not fork-safe), and a MongoDB worker holds one connection pool, not one per app.
    """

    def __init__(self, opener: Callable[[], Storage]) -> None:
        self._opener = opener
        self._lock = threading.Lock()
        self._storage: Storage | None = None
        self._users = 0

    def __call__(self) -> Storage:
        """A handle on the worker's storage, opening it if no app holds it; ``close()`` releases the handle."""
        with self._lock:
            if self._storage is None:
                self._storage = self._opener()
            self._users += 1
            return _Handle(self, self._storage)

    def _release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users or self._storage is None:
                return
            storage, self._storage = self._storage, None
        storage.close()


class _Handle(Storage):
    """The shared storage as one app sees it: its own ``close()`` releases only this app's hold."""

    def __init__(self, owner: SharedStorage, storage: Storage) -> None:
        self._owner = owner
        self._released = False
        self.wrapped = storage
        self.reads_in_process = storage.reads_in_process
        self.charge_stations = storage.charge_stations
        self.tokens = storage.tokens
        self.certificates = storage.certificates
        self.registrations = storage.registrations
        self.locations = storage.locations
        self.parties = storage.parties
        self.pushes = storage.pushes
        self.ocpp = storage.ocpp

    def __repr__(self) -> str:
        return repr(self.wrapped)

    def ping(self) -> None:
        self.wrapped.ping()

    def close(self) -> None:
        if not self._released:
            self._released = True
            self._owner._release()
