"""Repositories for every collection behind one interface, with a SQLite and a MongoDB engine."""

from __future__ import annotations

from .base import (
    CertificateRepository,
    ChargeStationRepository,
    Conflict,
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
