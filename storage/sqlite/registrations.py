"""The SQLite repository of registrations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .. import _documents as docs
from ..base import (
    Document,
    RegistrationRepository,
)
from .engine import _datetime, _millis

if TYPE_CHECKING:
    from . import SqliteStorage


class SqliteRegistrationRepository(RegistrationRepository):
    """OCPI registrations in ``ocpi_registrations``, by token hash."""

    def __init__(self, db: SqliteStorage) -> None:
        self._db = db

    def put(
        self,
        token_hash: str,
        status: str | None,
        identity: tuple[str, str] | None = None,
        expires_in: timedelta | None = None,
    ) -> None:
        # The host's clock: every worker sharing this file runs on this one machine.
        country_code, party_id = identity or (None, None)
        expires = None if expires_in is None else _millis(docs.now() + expires_in)
        self._db.execute(
            """INSERT INTO ocpi_registrations (token_hash, status, country_code, party_id, expires_at)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (token_hash) DO UPDATE SET
                   status = COALESCE(?, status),
                   country_code = COALESCE(excluded.country_code, country_code),
                   party_id = COALESCE(excluded.party_id, party_id),
                   expires_at = COALESCE(excluded.expires_at, expires_at)""",
            (token_hash, status or docs.REGISTRATION_PENDING, country_code, party_id, expires, status),
        )

    def find(self, token_hash: str) -> Document | None:
        row = self._db.fetch_one(f"{_REGISTRATION_SELECT} AND token_hash = ?", (_millis(docs.now()), token_hash))
        return None if row is None else _registration(row)

    def remove(self, token_hash: str) -> None:
        self._db.execute("DELETE FROM ocpi_registrations WHERE token_hash = ?", (token_hash,))

    def page(self, offset: int, limit: int) -> list[Document]:
        docs.check_page(offset, limit)
        rows = self._db.fetch_all(
            f"{_REGISTRATION_SELECT} ORDER BY token_hash LIMIT ? OFFSET ?", (_millis(docs.now()), limit, offset)
        )
        return [_registration(row) for row in rows]


#: The registrations that have not expired (NULL ``expires_at``: never), given the time now in milliseconds.
_REGISTRATION_SELECT = """SELECT token_hash, status, country_code, party_id, expires_at FROM ocpi_registrations
    WHERE (expires_at IS NULL OR expires_at > ?)"""


def _registration(row: Sequence[Any]) -> Document:
    found: Document = {"token_hash": row[0], "status": row[1]}
    if row[2] is not None:
        found["country_code"], found["party_id"] = row[2], row[3]
    if row[4] is not None:
        found["expires_at"] = _datetime(row[4])
    return found
