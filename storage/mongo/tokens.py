"""The MongoDB repository of tokens."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING
from pymongo.errors import (
    DuplicateKeyError,
)

from .. import _documents as docs
from ..base import (
    Document,
    NotFound,
    StorageUnavailable,
    TokenRepository,
    token_key,
)
from .engine import _CAS_ATTEMPTS, _token

if TYPE_CHECKING:
    from . import MongoStorage


def _stored_token(token: Mapping[str, Any]) -> Document:
    document = docs.token_document(token)
    return {"_id": token_key(document["uid"]), **document, "revision": uuid.uuid4().hex}


class MongoTokenRepository(TokenRepository):
    """Tokens in ``tokens``, ``_id`` = the upper-case uid; conditional writes are compare-and-swap on ``revision``."""

    def __init__(self, db: MongoStorage) -> None:
        self._db = db
        self._tokens = db.collection("tokens")

    def put(self, token: Mapping[str, Any]) -> None:
        document = _stored_token(token)
        with self._db.operation():
            self._tokens.replace_one({"_id": document["_id"]}, document, upsert=True)

    def _swap(self, key: str, change: Any) -> tuple[Document | None, Document]:
        """Write ``change(stored or None)`` (a stored document) only over what it was computed from; retries."""
        with self._db.operation():
            for _ in range(_CAS_ATTEMPTS):
                stored = self._tokens.find_one({"_id": key})
                replacement = change(None if stored is None else _token(stored))
                if stored is None:
                    try:
                        self._tokens.insert_one(replacement)
                    except DuplicateKeyError:
                        continue
                    return None, replacement
                # A token of release 2 has no revision: None matches only while the field is still missing.
                current = {"_id": key, "revision": stored.get("revision")}
                if self._tokens.replace_one(current, replacement).matched_count:
                    return _token(stored), replacement
        raise StorageUnavailable(f"token {key!r} is being written by too many writers at once")

    def put_owned(self, token: Mapping[str, Any]) -> bool:
        def change(stored: Document | None) -> Document:
            docs.check_owned(stored, token)
            return _stored_token(token)

        before, _ = self._swap(token_key(token["uid"]), change)
        return before is None

    def patch(self, uid: str, owner: tuple[str, str], token_type: str, changes: Mapping[str, Any]) -> Document:
        def change(stored: Document | None) -> Document:
            if stored is None or not docs.owns(stored, owner, token_type):
                raise NotFound("token", uid)
            return _stored_token(docs.patched_token(stored, changes))

        _, written = self._swap(token_key(uid), change)
        return _token(written)

    def find(self, uid: str) -> Document | None:
        with self._db.operation():
            stored = self._tokens.find_one({"_id": token_key(uid)})
        return None if stored is None else _token(stored)

    def find_by_contract_id(self, emaid: str) -> Document | None:
        with self._db.operation():
            found = list(self._tokens.find({"emaid": emaid}).sort([("_id", ASCENDING)]).limit(1))
        return _token(found[0]) if found else None

    def page(self, offset: int, limit: int) -> list[Document]:
        docs.check_page(offset, limit)
        if limit == 0:  # Mongo reads limit(0) as "no limit"
            return []
        with self._db.operation():
            found = list(self._tokens.find().sort([("_id", ASCENDING)]).skip(offset).limit(limit))
        return [_token(stored) for stored in found]
