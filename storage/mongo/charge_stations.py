"""The MongoDB repository of charge stations."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, ReturnDocument, UpdateOne

from .. import _documents as docs
from ..base import (
    ChargeStationRepository,
    Document,
    NotFound,
    StorageUnavailable,
)
from .engine import _member_key, _millis

if TYPE_CHECKING:
    from . import MongoStorage


_AUTH_PROJECTION = {"_id": 0, "security_profile": 1, "password_hash": 1, "invalid_username_allowed": 1}


class MongoChargeStationRepository(ChargeStationRepository):
    """Stations in ``charge_stations`` (auth and trigger); one document per setting and per certificate."""

    def __init__(self, db: MongoStorage) -> None:
        self._db = db
        self._stations = db.collection("charge_stations")
        self._settings = db.collection("charge_station_settings")
        self._install_certificates = db.collection("charge_station_install_certificates")

    def put_auth(self, cs_id: str, auth: Mapping[str, Any]) -> None:
        document = docs.auth_document(auth)
        update: Document = {"$set": {**document, "provisioning": docs.PROVISIONING_PENDING, "updated_at": docs.now()}}
        if "password_hash" not in document:
            update["$unset"] = {"password_hash": ""}
        with self._db.operation():
            self._stations.update_one({"_id": cs_id}, update, upsert=True)

    def find_auth(self, cs_id: str) -> Document | None:
        with self._db.operation():
            stored = self._stations.find_one({"_id": cs_id}, _AUTH_PROJECTION)
        if stored is None:
            return None
        document: Document = {"security_profile": stored["security_profile"]}
        if stored.get("password_hash") is not None:
            document["password_hash"] = stored["password_hash"]
        document["invalid_username_allowed"] = bool(stored["invalid_username_allowed"])
        return document

    def _require_station(self, cs_id: str) -> None:
        # Stations are never deleted, so the write that follows cannot race with a removal.
        if self._stations.find_one({"_id": cs_id}, {"_id": 1}) is None:
            raise NotFound("charge station", cs_id)

    def merge_settings(self, cs_id: str, settings: Iterable[Mapping[str, str]]) -> None:
        rows = docs.setting_rows(settings)
        staged = _staged()
        with self._db.operation():
            self._require_station(cs_id)
            if rows:
                self._settings.bulk_write(
                    [
                        UpdateOne(
                            {"_id": _member_key(cs_id, row["name"])},
                            {"$set": {"cs_id": cs_id, **row, **staged}, "$unset": {"detail": ""}},
                            upsert=True,
                        )
                        for row in rows
                    ]
                )
                _bump(self._db, cs_id, staged["updated_at"])

    def settings(self, cs_id: str) -> list[Document]:
        with self._db.operation():
            found = list(self._settings.find({"cs_id": cs_id}).sort([("name", ASCENDING)]))
        return [{"name": d["name"], "value": d["value"], "status": d["status"]} for d in found]

    def merge_install_certificates(self, cs_id: str, certificates: Iterable[Mapping[str, str]]) -> None:
        rows = docs.install_certificate_rows(certificates)
        staged = _staged()
        with self._db.operation():
            self._require_station(cs_id)
            if rows:
                self._install_certificates.bulk_write(
                    [
                        UpdateOne(
                            {"_id": _member_key(cs_id, row["certificate_id"])},
                            {"$set": {"cs_id": cs_id, **row, **staged}, "$unset": {"detail": ""}},
                            upsert=True,
                        )
                        for row in rows
                    ]
                )
                _bump(self._db, cs_id, staged["updated_at"])

    def install_certificates(self, cs_id: str) -> list[Document]:
        with self._db.operation():
            found = list(self._install_certificates.find({"cs_id": cs_id}).sort([("certificate_id", ASCENDING)]))
        return [
            {"certificate_id": d["certificate_id"], "type": d["type"], "pem": d["pem"], "status": d["status"]}
            for d in found
        ]

    def put_trigger(self, cs_id: str, trigger: Mapping[str, str]) -> None:
        document = docs.trigger_document(trigger)
        staged = _staged()
        with self._db.operation():
            result = self._stations.update_one({"_id": cs_id}, {"$set": {"trigger": {**document, **staged}}})
            if result.matched_count:
                _bump(self._db, cs_id, staged["updated_at"])
        if result.matched_count == 0:
            raise NotFound("charge station", cs_id)

    def find_trigger(self, cs_id: str) -> Document | None:
        with self._db.operation():
            stored = self._stations.find_one({"_id": cs_id}, {"_id": 0, "trigger": 1})
        if stored is None or "trigger" not in stored:
            return None
        return docs.trigger_document(stored["trigger"])


def _staged() -> Document:
    """The delivery fields of an item staged now: a new revision, never attempted, due at once."""
    return {"revision": uuid.uuid4().hex, "attempts": 0, "due_at": 0, "updated_at": _millis(docs.now())}


def _bump(db: MongoStorage, cs_id: str, at: int) -> None:
    """Count one more change of the station, after the change itself is written, so every worker sees it."""
    db.collection("charge_station_runtime").update_one(
        {"_id": cs_id}, {"$inc": {"seq": 1}, "$set": {"changed_at": at, "change_seq": next_change(db)}}, upsert=True
    )


def next_change(db: MongoStorage) -> int:
    """The store's next change number. Taken before the change is numbered on its station, so a change can land
    after a later number's: ``MongoOcppRepository.changes`` asks again for numbers it skipped over."""
    stored = db.collection("counters").find_one_and_update(
        {"_id": "changes"}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    if stored is None:  # upsert with ReturnDocument.AFTER always returns the document
        raise StorageUnavailable("MongoDB returned no change counter")
    return int(stored["value"])
