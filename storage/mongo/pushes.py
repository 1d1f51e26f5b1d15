"""The MongoDB repository of pushes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bson.datetime_ms import DatetimeMS
from pymongo import ASCENDING, ReturnDocument

from .. import _documents as docs
from ..base import (
    Document,
    PushRepository,
    push_id,
)
from .engine import _NOW, _UTC_CODEC, _later, _millis

if TYPE_CHECKING:
    from . import MongoStorage


# Outbox times are integer milliseconds since the epoch, as earlier releases stored them.
_FREE = 0

_RELEASE: Document = {"$set": {"lease_until": _FREE}, "$unset": {"lease": ""}}


def _push(stored: Document) -> Document:
    """The outbox entry of a stored one (``_id`` is the id, times in milliseconds)."""
    entry = {k: v for k, v in stored.items() if k != "_id"}
    entry["due_at"] = DatetimeMS(entry["due_at"]).as_datetime(_UTC_CODEC)
    entry["lease_until"] = DatetimeMS(entry["lease_until"]).as_datetime(_UTC_CODEC)
    return {"id": stored["_id"], **entry}


class MongoPushRepository(PushRepository):
    """The location push outbox in ``location_pushes``, ``_id`` = entry id; claims are one find_one_and_update.

    Writes that set a time are aggregation-pipeline updates, where ``$$NOW`` is the server's clock; values are
    ``$literal``, so that no location id or partner error can be read as a field path.
    """

    def __init__(self, db: MongoStorage) -> None:
        self._db = db
        self._pushes = db.collection("location_pushes")
        self._results = db.collection("location_push_results")

    def enqueue(self, party: str, location_id: str) -> None:
        update: list[Document] = [
            {
                "$set": {
                    "party": {"$literal": party},
                    "location_id": {"$literal": location_id},
                    "revision": uuid.uuid4().hex,
                    "attempts": 0,
                    "due_at": _NOW,
                    "lease_until": {"$ifNull": ["$lease_until", _FREE]},
                }
            },
            {"$unset": "last_error"},
        ]
        with self._db.operation():
            self._pushes.update_one({"_id": push_id(party, location_id)}, update, upsert=True)

    def claim(self, lease: str, lease_for: timedelta) -> Document | None:
        with self._db.operation():
            stored = self._pushes.find_one_and_update(
                {"$expr": {"$and": [{"$lte": ["$due_at", _NOW]}, {"$lte": ["$lease_until", _NOW]}]}},
                [{"$set": {"lease_until": _later(lease_for), "lease": {"$literal": lease}}}],
                sort=[("due_at", ASCENDING), ("_id", ASCENDING)],
                return_document=ReturnDocument.AFTER,
            )
        return None if stored is None else _push(stored)

    def complete(self, entry_id: str, lease: str, revision: str) -> bool:
        with self._db.operation():
            removed = self._pushes.delete_one({"_id": entry_id, "lease": lease, "revision": revision}).deleted_count
            if not removed:
                self._pushes.update_one({"_id": entry_id, "lease": lease}, _RELEASE)
        return bool(removed)

    def retry(self, entry_id: str, lease: str, revision: str, delay: timedelta, error: str) -> None:
        update: list[Document] = [
            {
                "$set": {
                    "due_at": _later(delay),
                    "last_error": {"$literal": error},
                    "lease_until": _FREE,
                    "attempts": {"$add": ["$attempts", 1]},
                }
            },
            {"$unset": "lease"},
        ]
        with self._db.operation():
            result = self._pushes.update_one({"_id": entry_id, "lease": lease, "revision": revision}, update)
            if not result.matched_count:
                self._pushes.update_one({"_id": entry_id, "lease": lease}, _RELEASE)

    def find(self, entry_id: str) -> Document | None:
        with self._db.operation():
            stored = self._pushes.find_one({"_id": entry_id})
        return None if stored is None else _push(stored)

    def all(self) -> list[Document]:
        with self._db.operation():
            found = list(self._pushes.find().sort([("due_at", ASCENDING), ("_id", ASCENDING)]))
        return [_push(stored) for stored in found]

    def remove_party(self, party: str) -> None:
        with self._db.operation():
            self._pushes.delete_many({"party": party})
            self._results.delete_many({"party": party})

    def waiting_by_party(self) -> dict[str, int]:
        with self._db.operation():
            groups = list(self._pushes.aggregate([{"$group": {"_id": "$party", "count": {"$sum": 1}}}]))
        return {group["_id"]: int(group["count"]) for group in groups}

    def record_result(self, result: Mapping[str, Any]) -> None:
        document: Document = {k: result[k] for k in docs.PUSH_RESULT_FIELDS if result.get(k) is not None}
        document["at"] = _millis(result["at"])
        if "since" in document:
            document["since"] = _millis(document["since"])
        key = push_id(result["party"], result["location_id"])
        with self._db.operation():
            self._results.replace_one({"_id": key}, {"_id": key, **document}, upsert=True)

    def results(self, location_id: str) -> list[Document]:
        with self._db.operation():
            found = list(self._results.find({"location_id": location_id}).sort([("party", ASCENDING)]))
        results = []
        for stored in found:
            result = {k: v for k, v in stored.items() if k != "_id"}
            result["at"] = DatetimeMS(result["at"]).as_datetime(_UTC_CODEC)
            if "since" in result:
                result["since"] = DatetimeMS(result["since"]).as_datetime(_UTC_CODEC)
            results.append(result)
        return results
