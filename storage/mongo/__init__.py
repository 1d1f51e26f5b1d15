"""The MongoDB engine: pymongo with natural-key ``_id``s, single-document atomic updates and no transactions.

``engine`` holds the plumbing (the client, error mapping, indexes, encoding and upgrades); each
repository has a module of its own.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from pymongo import MongoClient

from .. import _documents as docs
from ..base import Document, Storage
from .certificates import MongoCertificateRepository
from .charge_stations import MongoChargeStationRepository
from .engine import CLIENT_DEFAULTS, DEFAULT_DATABASE, SCHEMA_VERSION, MongoEngine
from .locations import MongoLocationRepository
from .ocpp import MongoOcppRepository
from .parties import MongoPartyRepository
from .pushes import MongoPushRepository
from .registrations import MongoRegistrationRepository
from .tokens import MongoTokenRepository

__all__ = [
    "CLIENT_DEFAULTS",
    "DEFAULT_DATABASE",
    "SCHEMA_VERSION",
    "MongoCertificateRepository",
    "MongoChargeStationRepository",
    "MongoLocationRepository",
    "MongoOcppRepository",
    "MongoPartyRepository",
    "MongoPushRepository",
    "MongoRegistrationRepository",
    "MongoStorage",
    "MongoTokenRepository",
]


class MongoStorage(MongoEngine, Storage):
    """Every repository in one MongoDB database.

    Indexes are created at open; if the server does not answer then, opening still succeeds and the
    next operation tries again.
    """

    def __init__(
        self, client: MongoClient[Document], database: str = DEFAULT_DATABASE, *, owns_client: bool = False
    ) -> None:
        """Use ``database`` through an existing client; ``close()`` closes the client only if it ``owns_client``."""
        super().__init__(client, database, owns_client=owns_client)
        self.charge_stations = MongoChargeStationRepository(self)
        self.tokens = MongoTokenRepository(self)
        self.certificates = MongoCertificateRepository(self)
        self.registrations = MongoRegistrationRepository(self)
        self.locations = MongoLocationRepository(self)
        self.parties = MongoPartyRepository(self)
        self.pushes = MongoPushRepository(self)
        self.ocpp = MongoOcppRepository(self)

    @classmethod
    def from_url(cls, url: str) -> MongoStorage:
        """Open a client for ``mongodb://`` or ``mongodb+srv://`` URLs; the database is the URL path or ``maeve``.

        Options in the URL take precedence over CLIENT_DEFAULTS. Does not wait for the server.
        """
        given = {name.lower() for name, _ in parse_qsl(urlsplit(url).query)}
        options = {name: value for name, value in CLIENT_DEFAULTS.items() if name.lower() not in given}
        client: MongoClient[Document] = MongoClient(url, tz_aware=True, tzinfo=docs.UTC, **options)
        try:
            return cls(client, client.get_default_database(DEFAULT_DATABASE).name, owns_client=True)
        except BaseException:
            client.close()
            raise

    def __repr__(self) -> str:
        return f"MongoStorage(database={self.db.name!r})"
