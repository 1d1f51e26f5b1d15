"""The SQLite repository of pushes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .. import _documents as docs
from ..base import (
    Document,
    PushRepository,
    push_id,
)
from .engine import _datetime, _millis

if TYPE_CHECKING:
    from . import SqliteStorage


_PUSH_COLUMNS = ("id", "party", "location_id", "revision", "attempts", "due_at", "lease_until", "lease", "last_error")


_PUSH_SELECT = f"SELECT {', '.join(_PUSH_COLUMNS)} FROM location_pushes"


def _push(row: tuple[Any, ...]) -> Document:
    """The outbox entry of a ``location_pushes`` row, without the optional keys that are NULL."""
    entry: Document = {c: v for c, v in zip(_PUSH_COLUMNS, row, strict=True) if v is not None}
    entry["due_at"] = _datetime(entry["due_at"])
    entry["lease_until"] = _datetime(entry["lease_until"])
    return entry


class SqlitePushRepository(PushRepository):
    """The location push outbox in ``location_pushes``; claims run in one ``BEGIN IMMEDIATE`` transaction.

    Times are read from this host's clock, the one clock of every worker that can share the file.
    """

    def __init__(self, db: SqliteStorage) -> None:
        self._db = db

    def enqueue(self, party: str, location_id: str) -> None:
        self._db.execute(
            """INSERT INTO location_pushes (id, party, location_id, revision, attempts, due_at, lease_until)
               VALUES (?, ?, ?, ?, 0, ?, 0)
               ON CONFLICT (id) DO UPDATE SET
                   revision = excluded.revision, attempts = 0, due_at = excluded.due_at, last_error = NULL""",
            (push_id(party, location_id), party, location_id, uuid.uuid4().hex, _millis(docs.now())),
        )

    def claim(self, lease: str, lease_for: timedelta) -> Document | None:
        now = docs.now()
        at = _millis(now)
        # Every worker polls: look before taking the write lock, which is needed only when there is work.
        if self._db.fetch_one("SELECT 1 FROM location_pushes WHERE due_at <= ? AND lease_until <= ?", (at, at)) is None:
            return None
        with self._db.transaction() as connection:
            row = connection.execute(
                f"{_PUSH_SELECT} WHERE due_at <= ? AND lease_until <= ? ORDER BY due_at, id LIMIT 1", (at, at)
            ).fetchone()
            if row is None:
                return None
            connection.execute(
                "UPDATE location_pushes SET lease_until = ?, lease = ? WHERE id = ?",
                (_millis(now + lease_for), lease, row[0]),
            )
            row = connection.execute(f"{_PUSH_SELECT} WHERE id = ?", (row[0],)).fetchone()
        return _push(row)

    def complete(self, entry_id: str, lease: str, revision: str) -> bool:
        with self._db.transaction() as connection:
            removed = connection.execute(
                "DELETE FROM location_pushes WHERE id = ? AND lease = ? AND revision = ?", (entry_id, lease, revision)
            ).rowcount
            if not removed:
                connection.execute(
                    "UPDATE location_pushes SET lease_until = 0, lease = NULL WHERE id = ? AND lease = ?",
                    (entry_id, lease),
                )
        return bool(removed)

    def retry(self, entry_id: str, lease: str, revision: str, delay: timedelta, error: str) -> None:
        with self._db.transaction() as connection:
            changed = connection.execute(
                """UPDATE location_pushes SET attempts = attempts + 1, due_at = ?, last_error = ?,
                       lease_until = 0, lease = NULL
                   WHERE id = ? AND lease = ? AND revision = ?""",
                (_millis(docs.now() + delay), error, entry_id, lease, revision),
            ).rowcount
            if not changed:
                connection.execute(
                    "UPDATE location_pushes SET lease_until = 0, lease = NULL WHERE id = ? AND lease = ?",
                    (entry_id, lease),
                )

    def find(self, entry_id: str) -> Document | None:
        row = self._db.fetch_one(f"{_PUSH_SELECT} WHERE id = ?", (entry_id,))
        return None if row is None else _push(row)

    def all(self) -> list[Document]:
        return [_push(row) for row in self._db.fetch_all(f"{_PUSH_SELECT} ORDER BY due_at, id", ())]

    def remove_party(self, party: str) -> None:
        with self._db.transaction() as connection:
            connection.execute("DELETE FROM location_pushes WHERE party = ?", (party,))
            connection.execute("DELETE FROM location_push_results WHERE party = ?", (party,))

    def waiting_by_party(self) -> dict[str, int]:
        rows = self._db.fetch_all("SELECT party, COUNT(*) FROM location_pushes GROUP BY party", ())
        return {party: int(count) for party, count in rows}

    def record_result(self, result: Mapping[str, Any]) -> None:
        values = {column: result.get(column) for column in _RESULT_COLUMNS[1:]}
        values["at"] = _millis(result["at"])
        if result.get("since") is not None:
            values["since"] = _millis(result["since"])
        row = (push_id(result["party"], result["location_id"]), *values.values())
        self._db.execute(
            f"INSERT OR REPLACE INTO location_push_results ({', '.join(_RESULT_COLUMNS)})"
            f" VALUES ({', '.join('?' * len(_RESULT_COLUMNS))})",
            row,
        )

    def results(self, location_id: str) -> list[Document]:
        rows = self._db.fetch_all(
            f"SELECT {', '.join(_RESULT_COLUMNS[1:])} FROM location_push_results WHERE location_id = ? ORDER BY party",
            (location_id,),
        )
        found = []
        for row in rows:
            result: Document = {c: v for c, v in zip(_RESULT_COLUMNS[1:], row, strict=True) if v is not None}
            result["at"] = _datetime(result["at"])
            if "since" in result:
                result["since"] = _datetime(result["since"])
            found.append(result)
        return found


_RESULT_COLUMNS = ("id", *docs.PUSH_RESULT_FIELDS)
