"""The MongoDB repository of parties."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING
from pymongo.errors import (
    DuplicateKeyError,
)

from .. import _documents as docs
from ..base import (
    Conflict,
    Document,
    NotFound,
    PartyRepository,
    party_identity,
)
from .engine import _CAS_ATTEMPTS, _NOW, _stored_party

if TYPE_CHECKING:
    from . import MongoStorage


#: An identity claim whose party document is missing this long after the claim was made (a writer that died
#: between the two writes) is free again, on the database server's clock.
_STALE_CLAIM_MS = 60_000


def _stale() -> Document:
    """The filter of identity claims made more than ``_STALE_CLAIM_MS`` ago on the server's clock (``claimed_at``
    a date set by the server; earlier releases stored milliseconds, and absent is as old as can be)."""
    claimed = {"$toLong": {"$ifNull": ["$claimed_at", 0]}}
    return {"$expr": {"$lt": [claimed, {"$subtract": [_NOW, _STALE_CLAIM_MS]}]}}


class MongoPartyRepository(PartyRepository):
    """OCPI parties in ``ocpi_parties``: ``{_id: key, inbound_token_hash (unique), identities, document}``,
    the document as plain JSON text (so that no key of a partner's is read as BSON's ``$ref`` or an operator);
    each identity held is one ``ocpi_party_identities`` entry ``{_id: identity, party, claimed_at}``, unique by
    ``_id``, ``claimed_at`` set by the server (``$currentDate``)."""

    def __init__(self, db: MongoStorage) -> None:
        self._db = db
        self._parties = db.collection("ocpi_parties")
        self._identities = db.collection("ocpi_party_identities")

    def _claim(self, key: str, identities: list[str]) -> list[str]:
        """Take each identity for ``key``; returns those newly taken. Raises Conflict (releasing them) if one is
        held by another party."""
        taken: list[str] = []
        for identity in identities:
            for _ in range(_CAS_ATTEMPTS):
                try:
                    # Inserted unless key holds it already; one held by another party is a duplicate _id.
                    claimed = self._identities.update_one(
                        {"_id": identity, "party": key}, {"$currentDate": {"claimed_at": True}}, upsert=True
                    )
                    if claimed.upserted_id is not None:
                        taken.append(identity)
                    break
                except DuplicateKeyError:
                    held = self._identities.find_one({"_id": identity})
                    if held is None:
                        continue
                    if held["party"] == key:
                        break
                    holder = self._parties.find_one({"_id": held["party"]}, {"identities": 1})
                    if holder is not None and identity not in holder["identities"]:
                        self._identities.delete_one({"_id": identity, "party": held["party"]})
                        continue
                    if holder is None:  # its writer died between the two writes, or is still writing
                        abandoned = {"_id": identity, "party": held["party"], **_stale()}
                        if self._identities.delete_one(abandoned).deleted_count:
                            continue
                    self._release(key, taken)
                    raise Conflict("party identity", identity, "is held by another party") from None
        return taken

    def _release(self, key: str, identities: list[str]) -> None:
        for identity in identities:
            self._identities.delete_one({"_id": identity, "party": key})

    def create(self, party: Mapping[str, Any]) -> None:
        identities = docs.party_identities(party)
        with self._db.operation():
            if self._parties.find_one({"_id": party["key"]}, {"_id": 1}) is not None:
                raise Conflict("party", party["key"], "is registered already")
            taken = self._claim(party["key"], identities)
            try:
                self._parties.insert_one(_stored_party(party, identities))
            except DuplicateKeyError:
                self._release(party["key"], taken)
                raise Conflict("party", party["key"], "is registered already") from None

    def update(self, key: str, inbound_token_hash: str, party: Mapping[str, Any]) -> None:
        identities = docs.party_identities(party)
        with self._db.operation():
            if self._parties.find_one({"_id": key, "inbound_token_hash": inbound_token_hash}, {"_id": 1}) is None:
                raise NotFound("party", key)
            taken = self._claim(key, identities)
            replaced = self._parties.replace_one(
                {"_id": key, "inbound_token_hash": inbound_token_hash}, _stored_party({**party, "key": key}, identities)
            )
            if not replaced.matched_count:
                self._release(key, taken)
                raise NotFound("party", key)
            for held in self._identities.find({"party": key}):
                if held["_id"] not in identities:
                    self._identities.delete_one({"_id": held["_id"], "party": key})

    def find(self, key: str) -> Document | None:
        with self._db.operation():
            stored = self._parties.find_one({"_id": key})
        return None if stored is None else _party(stored)

    def find_by_inbound_token_hash(self, token_hash: str) -> Document | None:
        with self._db.operation():
            stored = self._parties.find_one({"inbound_token_hash": token_hash})
        return None if stored is None else _party(stored)

    def find_by_identity(self, country_code: str, party_id: str) -> Document | None:
        identity = party_identity(country_code, party_id)
        with self._db.operation():
            held = self._identities.find_one({"_id": identity})
            stored = None if held is None else self._parties.find_one({"_id": held["party"]})
        return None if stored is None or identity not in stored["identities"] else _party(stored)

    def all(self) -> list[Document]:
        with self._db.operation():
            found = list(self._parties.find().sort([("_id", ASCENDING)]))
        return [_party(stored) for stored in found]

    def page(self, offset: int, limit: int) -> list[Document]:
        docs.check_page(offset, limit)
        if limit == 0:  # Mongo reads limit(0) as "no limit"
            return []
        with self._db.operation():
            found = list(self._parties.find().sort([("_id", ASCENDING)]).skip(offset).limit(limit))
        return [_party(stored) for stored in found]

    def count(self) -> int:
        with self._db.operation():
            # Counted in the _id index: without a filter and a hint, MongoDB counts by scanning the collection.
            return int(self._parties.count_documents({}, hint="_id_"))

    def remove(self, key: str) -> None:
        with self._db.operation():
            self._parties.delete_one({"_id": key})
            self._identities.delete_many({"party": key})

    def record_push(self, key: str, result: Mapping[str, Any]) -> None:
        # Compare-and-swap on the document text, so that a re-registration or another result in between wins.
        with self._db.operation():
            for _ in range(_CAS_ATTEMPTS):
                stored = self._parties.find_one({"_id": key})
                if stored is None:
                    return
                party = {**_party(stored), "last_push": dict(result)}
                text = docs.dump_document(party, docs.PARTY_TIMES)
                if self._parties.update_one(
                    {"_id": key, "document": stored["document"]}, {"$set": {"document": text}}
                ).matched_count:
                    return


def _party(stored: Document) -> Document:
    """The party document of a stored one."""
    party = docs.load_document(stored["document"], docs.PARTY_TIMES)
    party["key"] = stored["_id"]
    return party
