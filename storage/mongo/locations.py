"""The MongoDB repository of locations."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import _documents as docs
from ..base import (
    Document,
    LocationRepository,
)
from .engine import _LOCATION_ORDER

if TYPE_CHECKING:
    from . import MongoStorage


class MongoLocationRepository(LocationRepository):
    """Locations in ``locations``: ``{_id: id, location: <the whole document>}``.

    The document is nested so that none of its keys can clash with ``_id`` or be read as an operator.
    """

    def __init__(self, db: MongoStorage) -> None:
        self._db = db
        self._locations = db.collection("locations")

    def put(self, location: Mapping[str, Any]) -> None:
        docs.location_last_updated(location)
        # Refuses what SQLite refuses (a datetime anywhere but at LOCATION_TIMES), so both engines agree.
        docs.dump_document(location, docs.LOCATION_TIMES)
        location_id = location["id"]
        with self._db.operation():
            self._locations.replace_one(
                {"_id": location_id}, {"_id": location_id, "location": dict(location)}, upsert=True
            )

    def find(self, location_id: str) -> Document | None:
        with self._db.operation():
            stored = self._locations.find_one({"_id": location_id})
        return None if stored is None else dict(stored["location"])

    def page(self, offset: int, limit: int) -> list[Document]:
        docs.check_page(offset, limit)
        if limit == 0:  # Mongo reads limit(0) as "no limit"
            return []
        with self._db.operation():
            found = list(self._locations.find().sort(_LOCATION_ORDER).skip(offset).limit(limit))
        return [dict(stored["location"]) for stored in found]

    def updated_between(
        self, offset: int, limit: int, date_from: datetime | None = None, date_to: datetime | None = None
    ) -> list[Document]:
        docs.check_page(offset, limit)
        if limit == 0:
            return []
        with self._db.operation():
            found = list(
                self._locations.find(_updated_between(date_from, date_to))
                .sort(_LOCATION_ORDER)
                .skip(offset)
                .limit(limit)
            )
        return [dict(stored["location"]) for stored in found]

    def count(self, date_from: datetime | None = None, date_to: datetime | None = None) -> int:
        window = _updated_between(date_from, date_to)
        with self._db.operation():
            # A window is counted in its index; without one, a hint keeps MongoDB from scanning the collection.
            if window:
                return int(self._locations.count_documents(window))
            return int(self._locations.count_documents({}, hint="_id_"))


def _updated_between(date_from: datetime | None, date_to: datetime | None) -> Document:
    """The filter on ``location.last_updated`` (indexed) for a date window."""
    bounds: Document = {}
    if date_from is not None:
        bounds["$gte"] = date_from
    if date_to is not None:
        bounds["$lt"] = date_to
    return {"location.last_updated": bounds} if bounds else {}
