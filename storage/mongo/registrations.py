"""The MongoDB repository of registrations."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bson.datetime_ms import DatetimeMS
from pymongo import ASCENDING

from .. import _documents as docs
from ..base import (
    Document,
    RegistrationRepository,
)
from .engine import _UTC_CODEC, _millis

if TYPE_CHECKING:
    from . import MongoStorage


class MongoRegistrationRepository(RegistrationRepository):
    """OCPI registrations in ``ocpi_registrations``, ``_id`` = token hash, ``expires_at`` in milliseconds."""

    def __init__(self, db: MongoStorage) -> None:
        self._db = db
        self._registrations = db.collection("ocpi_registrations")

    def put(
        self,
        token_hash: str,
        status: str | None,
        identity: tuple[str, str] | None = None,
        expires_at: datetime | None = None,
    ) -> None:
        # One atomic upsert either way: $setOnInsert never touches an existing registration.
        changes: Document = {}
        if status is not None:
            changes["status"] = status
        if identity is not None:
            changes["country_code"], changes["party_id"] = identity
        if expires_at is not None:
            changes["expires_at"] = _millis(expires_at)
        update: Document = {"$set": changes} if changes else {}
        if status is None:
            update["$setOnInsert"] = {"status": docs.REGISTRATION_PENDING}
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
    """The filter of registrations that have not expired (absent ``expires_at``: never)."""
    return {"$or": [{"expires_at": None}, {"expires_at": {"$gt": _millis(docs.now())}}]}


def _registration(stored: Mapping[str, Any]) -> Document:
    found: Document = {"token_hash": stored["_id"], "status": stored["status"]}
    if stored.get("country_code") is not None:
        found["country_code"], found["party_id"] = stored["country_code"], stored["party_id"]
    if stored.get("expires_at") is not None:
        found["expires_at"] = DatetimeMS(stored["expires_at"]).as_datetime(_UTC_CODEC)
    return found
