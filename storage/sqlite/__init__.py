"""The SQLite engine: stdlib sqlite3 in WAL mode, one connection per thread, safe across worker processes.

``engine`` holds the plumbing (connections, transactions, error mapping, encoding, the schema and its
upgrades); each repository has a module of its own.
"""

from __future__ import annotations

import os

from ..base import Storage
from .certificates import SqliteCertificateRepository
from .charge_stations import SqliteChargeStationRepository
from .engine import COLUMNS, MIGRATIONS, SCHEMA_VERSION, URL_PREFIX, SqliteEngine, path_from_url
from .locations import SqliteLocationRepository
from .ocpp import SqliteOcppRepository
from .parties import SqlitePartyRepository
from .pushes import SqlitePushRepository
from .registrations import SqliteRegistrationRepository
from .tokens import SqliteTokenRepository

__all__ = [
    "COLUMNS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "URL_PREFIX",
    "SqliteCertificateRepository",
    "SqliteChargeStationRepository",
    "SqliteLocationRepository",
    "SqliteOcppRepository",
    "SqlitePartyRepository",
    "SqlitePushRepository",
    "SqliteRegistrationRepository",
    "SqliteStorage",
    "SqliteTokenRepository",
    "path_from_url",
]


class SqliteStorage(SqliteEngine, Storage):
    """Every repository in one SQLite file, shared safely by the threads and processes that open it.

    Each thread lazily opens its own connection (WAL, ``synchronous=NORMAL``, a busy timeout);
    every read-modify-write runs in one ``BEGIN IMMEDIATE`` transaction.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        """Open (creating if needed) the database file and its tables; raises StorageUnavailable."""
        super().__init__(path, timeout=timeout)
        self.charge_stations = SqliteChargeStationRepository(self)
        self.tokens = SqliteTokenRepository(self)
        self.certificates = SqliteCertificateRepository(self)
        self.registrations = SqliteRegistrationRepository(self)
        self.locations = SqliteLocationRepository(self)
        self.parties = SqlitePartyRepository(self)
        self.pushes = SqlitePushRepository(self)
        self.ocpp = SqliteOcppRepository(self)

    @classmethod
    def from_url(cls, url: str) -> SqliteStorage:
        """Open the database named by a SQLAlchemy-style URL (see ``path_from_url``)."""
        return cls(path_from_url(url))

    def __repr__(self) -> str:
        return f"SqliteStorage({str(self.path)!r})"
