"""The SQLite repository of locations."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import _documents as docs
from ..base import (
    Document,
    LocationRepository,
)
from .engine import _LOCATION_TIMES, _dump, _load, _millis

if TYPE_CHECKING:
    from . import SqliteStorage


class SqliteLocationRepository(LocationRepository):
    """Locations in ``locations``: the whole document as plain JSON, plus its sort keys."""

    def __init__(self, db: SqliteStorage) -> None:
        self._db = db

    def put(self, location: Mapping[str, Any]) -> None:
        last_updated = docs.location_last_updated(location)
        self._db.execute(
            """INSERT INTO locations (id, last_updated, document) VALUES (?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET last_updated = excluded.last_updated, document = excluded.document""",
            (
                location["id"],
                None if last_updated is None else _millis(last_updated),
                _dump(location, _LOCATION_TIMES),
            ),
        )

    def find(self, location_id: str) -> Document | None:
        row = self._db.fetch_one("SELECT document FROM locations WHERE id = ?", (location_id,))
        return None if row is None else _load(row[0], _LOCATION_TIMES)

    def page(self, offset: int, limit: int) -> list[Document]:
        docs.check_page(offset, limit)
        rows = self._db.fetch_all(
            "SELECT document FROM locations ORDER BY last_updated, id LIMIT ? OFFSET ?", (limit, offset)
        )
        return [_load(row[0], _LOCATION_TIMES) for row in rows]

    def updated_between(
        self, offset: int, limit: int, date_from: datetime | None = None, date_to: datetime | None = None
    ) -> list[Document]:
        docs.check_page(offset, limit)
        where, parameters = _updated_between(date_from, date_to)
        rows = self._db.fetch_all(
            f"SELECT document FROM locations{where} ORDER BY last_updated, id LIMIT ? OFFSET ?",
            (*parameters, limit, offset),
        )
        return [_load(row[0], _LOCATION_TIMES) for row in rows]

    def count(self, date_from: datetime | None = None, date_to: datetime | None = None) -> int:
        where, parameters = _updated_between(date_from, date_to)
        row = self._db.fetch_one(f"SELECT COUNT(*) FROM locations{where}", parameters)
        return int(row[0]) if row else 0


def _updated_between(date_from: datetime | None, date_to: datetime | None) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause (on the last_updated index) and its parameters for a date window."""
    conditions, parameters = [], []
    if date_from is not None:
        conditions.append("last_updated >= ?")
        parameters.append(_millis(date_from))
    if date_to is not None:
        conditions.append("last_updated < ?")
        parameters.append(_millis(date_to))
    return (f" WHERE {' AND '.join(conditions)}" if conditions else ""), tuple(parameters)
