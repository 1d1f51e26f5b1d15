"""The MongoDB repository of registrations."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bson.datetime_ms import DatetimeMS
from pymongo import ASCENDING

from .. import _documents as docs
from ..base import (
    Document,
    RegistrationRepository,
)
from .engine import _NOW, _UTC_CODEC, _later

if TYPE_CHECKING:
    from . import MongoStorage


class MongoRegistrationRepository(RegistrationRepository):
    """OCPI registrations in ``ocpi_registrations``, ``_id`` = token hash, ``expires_at`` in milliseconds on the
    database server's clock, which sets it and compares it (``$$NOW``), so no worker's own clock can end a token
    early or keep it late."""

    def __init__(self, db: MongoStorage) -> None:
        self._db = db
        self._registrations = db.collection("ocpi_registrations")

    def put(
        self,
        token_hash: str,
        status: str | None,
        identity: tuple[str, str] | None = None,
        expires_in: timedelta | None = None,
    ) -> None:
        # One atomic upsert either way: an existing registration keeps its status unless one is given.
        if expires_in is None:
            changes: Document = {}
            if status is not None:
                changes["status"] = status
            if identity is not None:
                changes["country_code"], changes["party_id"] = identity
            operators: Document = {"$set": changes} if changes else {}
            if status is None:
                operators["$setOnInsert"] = {"status": docs.REGISTRATION_PENDING}
            update: Document | list[Document] = operators
        else:
            # A pipeline update, where $$NOW is the server's clock; values are $literal, never read as paths.
            kept = {"$ifNull": ["$status", docs.REGISTRATION_PENDING]}
            fields: Document = {
                "status": kept if status is None else {"$literal": status},
                "expires_at": _later(expires_in),
            }
            if identity is not None:
                fields["country_code"], fields["party_id"] = ({"$literal": part} for part in identity)
            update = [{"$set": fields}]
        with self._db.operation():
            self._registrations.update_one({"_id": token_hash}, update, upsert=True)

    def find(self, token_hash: str) -> Document | None:
        with self._db.operation():
            stored = self._registrations.find_one({"_id": token_hash, **_unexpired()})
        return None if stored is None else _registration(stored)

    def remove(self, token_hash: str) -> None:
        with self._db.operation():
            self._registrations.delete_one({"_id": token_hash})

    def page(self, offset: int, limit: int) -> list[Document]:
        docs.check_page(offset, limit)
        if limit == 0:  # Mongo reads limit(0) as "no limit"
            return []
        with self._db.operation():
            found = list(self._registrations.find(_unexpired()).sort([("_id", ASCENDING)]).skip(offset).limit(limit))
        return [_registration(stored) for stored in found]


def _unexpired() -> Document:
    """The filter of registrations that have not expired on the server's clock (absent ``expires_at``: never)."""
    return {"$or": [{"expires_at": None}, {"$expr": {"$gt": ["$expires_at", _NOW]}}]}


def _registration(stored: Mapping[str, Any]) -> Document:
    found: Document = {"token_hash": stored["_id"], "status": stored["status"]}
    if stored.get("country_code") is not None:
        found["country_code"], found["party_id"] = stored["country_code"], stored["party_id"]
    if stored.get("expires_at") is not None:
        found["expires_at"] = DatetimeMS(stored["expires_at"]).as_datetime(_UTC_CODEC)
    return found
