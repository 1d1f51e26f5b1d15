"""The SQLite repository of parties."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import _documents as docs
from ..base import (
    Conflict,
    Document,
    NotFound,
    PartyRepository,
    party_identity,
)
from .engine import _PARTY_TIMES, _dump, _load

if TYPE_CHECKING:
    from . import SqliteStorage


def _held_elsewhere(connection: sqlite3.Connection, key: str, identities: list[str]) -> None:
    """Raise Conflict if another party than ``key`` holds one of the identities."""
    for identity in identities:
        row = connection.execute("SELECT party FROM ocpi_party_identities WHERE identity = ?", (identity,)).fetchone()
        if row is not None and row[0] != key:
            raise Conflict("party identity", identity, "is held by another party")


class SqlitePartyRepository(PartyRepository):
    """OCPI parties in ``ocpi_parties`` (the document as plain JSON, plus its lookup keys) and the identities
    each holds in ``ocpi_party_identities``, whose primary key makes an identity one party's alone."""

    def __init__(self, db: SqliteStorage) -> None:
        self._db = db

    def create(self, party: Mapping[str, Any]) -> None:
        identities = docs.party_identities(party)
        with self._db.transaction() as connection:
            if connection.execute("SELECT 1 FROM ocpi_parties WHERE key = ?", (party["key"],)).fetchone():
                raise Conflict("party", party["key"], "is registered already")
            _held_elsewhere(connection, party["key"], identities)
            connection.execute(
                "INSERT INTO ocpi_parties (key, inbound_token_hash, document) VALUES (?, ?, ?)",
                (party["key"], party["inbound_token_hash"], _dump(party, _PARTY_TIMES)),
            )
            connection.executemany(
                "INSERT INTO ocpi_party_identities (identity, party) VALUES (?, ?)",
                [(identity, party["key"]) for identity in identities],
            )

    def update(self, key: str, inbound_token_hash: str, party: Mapping[str, Any]) -> None:
        identities = docs.party_identities(party)
        with self._db.transaction() as connection:
            row = connection.execute("SELECT inbound_token_hash FROM ocpi_parties WHERE key = ?", (key,)).fetchone()
            if row is None or row[0] != inbound_token_hash:
                raise NotFound("party", key)
            _held_elsewhere(connection, key, identities)
            connection.execute("DELETE FROM ocpi_party_identities WHERE party = ?", (key,))
            connection.executemany(
                "INSERT INTO ocpi_party_identities (identity, party) VALUES (?, ?)",
                [(identity, key) for identity in identities],
            )
            connection.execute(
                "UPDATE ocpi_parties SET inbound_token_hash = ?, document = ? WHERE key = ?",
                (party["inbound_token_hash"], _dump({**party, "key": key}, _PARTY_TIMES), key),
            )

    def find(self, key: str) -> Document | None:
        row = self._db.fetch_one("SELECT document FROM ocpi_parties WHERE key = ?", (key,))
        return None if row is None else _load(row[0], _PARTY_TIMES)

    def find_by_inbound_token_hash(self, token_hash: str) -> Document | None:
        row = self._db.fetch_one("SELECT document FROM ocpi_parties WHERE inbound_token_hash = ?", (token_hash,))
        return None if row is None else _load(row[0], _PARTY_TIMES)

    def find_by_identity(self, country_code: str, party_id: str) -> Document | None:
        row = self._db.fetch_one(
            """SELECT p.document FROM ocpi_party_identities i JOIN ocpi_parties p ON p.key = i.party
               WHERE i.identity = ?""",
            (party_identity(country_code, party_id),),
        )
        return None if row is None else _load(row[0], _PARTY_TIMES)

    def all(self) -> list[Document]:
        rows = self._db.fetch_all("SELECT document FROM ocpi_parties ORDER BY key", ())
        return [_load(row[0], _PARTY_TIMES) for row in rows]

    def page(self, offset: int, limit: int) -> list[Document]:
        docs.check_page(offset, limit)
        rows = self._db.fetch_all("SELECT document FROM ocpi_parties ORDER BY key LIMIT ? OFFSET ?", (limit, offset))
        return [_load(row[0], _PARTY_TIMES) for row in rows]

    def count(self) -> int:
        row = self._db.fetch_one("SELECT count(*) FROM ocpi_parties", ())
        return int(row[0]) if row else 0

    def remove(self, key: str) -> None:
        with self._db.transaction() as connection:
            connection.execute("DELETE FROM ocpi_party_identities WHERE party = ?", (key,))
            connection.execute("DELETE FROM ocpi_parties WHERE key = ?", (key,))

    def record_push(self, key: str, result: Mapping[str, Any]) -> None:
        with self._db.transaction() as connection:
            row = connection.execute("SELECT document FROM ocpi_parties WHERE key = ?", (key,)).fetchone()
            if row is None:
                return
            party = _load(row[0], _PARTY_TIMES)
            party["last_push"] = dict(result)
            connection.execute("UPDATE ocpi_parties SET document = ? WHERE key = ?", (_dump(party, _PARTY_TIMES), key))
