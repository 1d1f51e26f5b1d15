"""Repositories for every collection behind one interface, with a SQLite and a MongoDB engine."""

from __future__ import annotations

from .base import (
    CertificateRepository,
    ChargeStationRepository,
    Conflict,
    Document,
    LocationRepository,
    NotFound,
    OcppRepository,
    PartyRepository,
    PushRepository,
    RegistrationRepository,
    SchemaTooNew,
    Storage,
    StorageError,
    StorageUnavailable,
    TokenRepository,
    TooLarge,
    party_identity,
    push_id,
    token_key,
)

__all__ = [
    "CertificateRepository",
    "ChargeStationRepository",
    "Conflict",
    "LocationRepository",
    "NotFound",
    "OcppRepository",
    "PartyRepository",
    "PushRepository",
    "RegistrationRepository",
    "SchemaTooNew",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "TokenRepository",
    "TooLarge",
    "check_schema_version",
    "open_storage",
    "party_identity",
    "push_id",
    "token_key",
]


def open_storage(url: str) -> Storage:
    """Open the engine named by the URL scheme: ``sqlite:///path`` or ``mongodb://…``.

    Raises ValueError for any other scheme.
    """
    if url.startswith("sqlite:"):
        from .sqlite import SqliteStorage

        return SqliteStorage.from_url(url)
    if url.startswith(("mongodb:", "mongodb+srv:")):
        from .mongo import MongoStorage

        return MongoStorage.from_url(url)
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")


def check_schema_version(url: str) -> None:
    """Raise SchemaTooNew if the store the URL names was written by a newer release, reading only.

    A store that does not exist yet, or does not answer within a second, is not checked here: opening it
    checks again. Raises ValueError for an unsupported URL.
    """
    if url.startswith("sqlite:"):
        from .sqlite import engine as sqlite_engine

        path = sqlite_engine.path_from_url(url)
        version = sqlite_engine.stored_version(path)
        if version is not None:
            sqlite_engine.check_version(version, path)
        return
    if url.startswith(("mongodb:", "mongodb+srv:")):
        from pymongo import MongoClient

        from .mongo import engine as mongo_engine

        client: MongoClient[Document] = MongoClient(url, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000)
        with client:
            database = client.get_default_database(mongo_engine.DEFAULT_DATABASE).name
            version = mongo_engine.stored_version(client, database)
        if version is not None:
            mongo_engine.check_version(version, database)
        return
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")
