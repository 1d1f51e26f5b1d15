"""The SQLite repository of tokens."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import _documents as docs
from ..base import (
    Document,
    NotFound,
    TokenRepository,
    token_key,
)
from .engine import _datetime, _millis

if TYPE_CHECKING:
    from . import SqliteStorage


_TOKEN_COLUMNS = ("uid", *docs.TOKEN_REQUIRED, *docs.TOKEN_OPTIONAL)


_TOKEN_SELECT = f"SELECT {', '.join(_TOKEN_COLUMNS)} FROM tokens"


# Every column is set, so a missing optional field replaces (clears) the stored one.
_TOKEN_UPSERT = (
    f"INSERT INTO tokens (key, {', '.join(_TOKEN_COLUMNS)}) VALUES (?, {', '.join('?' * len(_TOKEN_COLUMNS))})"
    f" ON CONFLICT (key) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _TOKEN_COLUMNS)}"
)


def _token(row: tuple[Any, ...]) -> Document:
    """The token document of a ``tokens`` row, without the optional keys that are NULL."""
    document: Document = {}
    for column, value in zip(_TOKEN_COLUMNS, row, strict=True):
        if value is None and column in docs.TOKEN_OPTIONAL:
            continue
        document[column] = value
    document["valid"] = bool(document["valid"])
    document["last_updated"] = _datetime(document["last_updated"])
    if "energy_contract" in document:
        document["energy_contract"] = json.loads(document["energy_contract"])
    return document


def _token_row(token: Mapping[str, Any]) -> tuple[Any, ...]:
    """The ``tokens`` row of a token document, its canonical key first."""
    document = docs.token_document(token)
    document["last_updated"] = _millis(document["last_updated"])
    if "energy_contract" in document:
        document["energy_contract"] = json.dumps(document["energy_contract"], ensure_ascii=False)
    return (token_key(document["uid"]), *(document.get(column) for column in _TOKEN_COLUMNS))


class SqliteTokenRepository(TokenRepository):
    """Tokens in ``tokens``, one column per field, keyed by the upper-case uid; conditional writes run in one
    ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, db: SqliteStorage) -> None:
        self._db = db

    def put(self, token: Mapping[str, Any]) -> None:
        self._db.execute(_TOKEN_UPSERT, _token_row(token))

    def put_owned(self, token: Mapping[str, Any]) -> bool:
        row = _token_row(token)
        with self._db.transaction() as connection:
            found = connection.execute(f"{_TOKEN_SELECT} WHERE key = ?", (row[0],)).fetchone()
            docs.check_owned(None if found is None else _token(found), token)
            connection.execute(_TOKEN_UPSERT, row)
        return found is None

    def patch(self, uid: str, owner: tuple[str, str], token_type: str, changes: Mapping[str, Any]) -> Document:
        with self._db.transaction() as connection:
            found = connection.execute(f"{_TOKEN_SELECT} WHERE key = ?", (token_key(uid),)).fetchone()
            if found is None or not docs.owns(_token(found), owner, token_type):
                raise NotFound("token", uid)
            patched = docs.patched_token(_token(found), changes)
            connection.execute(_TOKEN_UPSERT, _token_row(patched))
        return patched

    def find(self, uid: str) -> Document | None:
        row = self._db.fetch_one(f"{_TOKEN_SELECT} WHERE key = ?", (token_key(uid),))
        return None if row is None else _token(row)

    def find_by_contract_id(self, emaid: str) -> Document | None:
        row = self._db.fetch_one(f"{_TOKEN_SELECT} WHERE emaid = ? ORDER BY key LIMIT 1", (emaid,))
        return None if row is None else _token(row)

    def page(self, offset: int, limit: int) -> list[Document]:
        docs.check_page(offset, limit)
        rows = self._db.fetch_all(f"{_TOKEN_SELECT} ORDER BY key LIMIT ? OFFSET ?", (limit, offset))
        return [_token(row) for row in rows]
