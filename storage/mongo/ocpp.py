"""The MongoDB repository of ocpp."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bson.datetime_ms import DatetimeMS
from pymongo import ASCENDING, ReturnDocument

from .. import _documents as docs
from ..base import (
    Document,
    OcppRepository,
    StorageUnavailable,
)
from .engine import _UTC_CODEC, _member_key, _millis

if TYPE_CHECKING:
    from . import MongoStorage


_RUNTIME_TIMES = ("changed_at", "last_boot", "last_seen")


_DELIVERY_TIMES = ("due_at", "updated_at")


_SETTLED_FIELDS = ("status", "detail", "attempts", "due_at", "updated_at")


_DELIVERY_KEYS = ("status", "revision", "attempts", "due_at", "updated_at", "detail")


def _delivery(stored: Mapping[str, Any], keys: tuple[str, ...]) -> Document:
    """A staged item with its delivery fields: unset ones absent, times as datetimes, attempts 0 if never set."""
    item: Document = {key: stored[key] for key in (*keys, *_DELIVERY_KEYS) if stored.get(key) is not None}
    item.setdefault("attempts", 0)
    item["due_at"] = DatetimeMS(item.get("due_at", 0)).as_datetime(_UTC_CODEC)
    if "updated_at" in item:
        item["updated_at"] = DatetimeMS(item["updated_at"]).as_datetime(_UTC_CODEC)
    return item


class MongoOcppRepository(OcppRepository):
    """Runtime details in ``charge_station_runtime`` (``_id`` = cs_id, times in milliseconds); delivery fields
    on the staged items' own documents."""

    def __init__(self, db: MongoStorage) -> None:
        self._db = db
        self._runtime = db.collection("charge_station_runtime")
        self._stations = db.collection("charge_stations")
        self._settings = db.collection("charge_station_settings")
        self._install_certificates = db.collection("charge_station_install_certificates")

    def connect(self, cs_id: str, connection: str, ocpp_version: str, now: datetime) -> None:
        at = _millis(now)
        with self._db.operation():
            self._runtime.update_one(
                {"_id": cs_id},
                {
                    "$inc": {"seq": 1},
                    "$set": {"changed_at": at, "connection": connection, "ocpp_version": ocpp_version, "last_seen": at},
                },
                upsert=True,
            )

    def disconnect(self, cs_id: str, connection: str, now: datetime) -> bool:
        with self._db.operation():
            result = self._runtime.update_one(
                {"_id": cs_id, "connection": connection},
                {"$set": {"last_seen": _millis(now)}, "$unset": {"connection": ""}},
            )
        return bool(result.matched_count)

    def record_boot(self, cs_id: str, boot: Mapping[str, str], now: datetime) -> None:
        at = _millis(now)
        details: Document = {"vendor": boot["vendor"], "model": boot["model"], "last_boot": at, "last_seen": at}
        unset = {}
        for key in ("serial_number", "firmware_version"):
            if boot.get(key) is not None:
                details[key] = boot[key]
            else:
                unset[key] = ""
        update: Document = {"$set": details, "$setOnInsert": {"seq": 1, "changed_at": at}}
        if unset:
            update["$unset"] = unset
        with self._db.operation():
            self._runtime.update_one({"_id": cs_id}, update, upsert=True)
            self._settings.update_many(
                {"cs_id": cs_id, "status": "RebootRequired"}, {"$set": {"status": "Accepted", "updated_at": at}}
            )

    def touch(self, cs_id: str, now: datetime) -> None:
        with self._db.operation():
            self._runtime.update_one({"_id": cs_id}, {"$set": {"last_seen": _millis(now)}})

    def runtime(self, cs_id: str) -> Document | None:
        with self._db.operation():
            stored = self._runtime.find_one({"_id": cs_id})
        if stored is None:
            return None
        document: Document = {"cs_id": stored["_id"], **{k: v for k, v in stored.items() if k != "_id"}}
        for key in _RUNTIME_TIMES:
            if key in document:
                document[key] = DatetimeMS(document[key]).as_datetime(_UTC_CODEC)
        return document

    def changes(self, since: datetime) -> list[Document]:
        with self._db.operation():
            found = list(self._runtime.find({"changed_at": {"$gte": _millis(since)}}, {"seq": 1, "connection": 1}))
        return [
            {"cs_id": d["_id"], "seq": d["seq"], **({"connection": d["connection"]} if d.get("connection") else {})}
            for d in found
        ]

    def deliveries(self, cs_id: str) -> Document:
        with self._db.operation():
            settings = list(self._settings.find({"cs_id": cs_id}).sort([("name", ASCENDING)]))
            certificates = list(self._install_certificates.find({"cs_id": cs_id}).sort([("certificate_id", ASCENDING)]))
            station = self._stations.find_one({"_id": cs_id}, {"_id": 0, "trigger": 1})
        trigger = (station or {}).get("trigger")
        return {
            "settings": [_delivery(d, ("name", "value")) for d in settings],
            "certificates": [_delivery(d, ("certificate_id", "type", "pem")) for d in certificates],
            "trigger": None if not trigger else _delivery(trigger, ("message",)),
        }

    def settle(self, cs_id: str, kind: str, key: str, revision: str | None, update: Mapping[str, Any]) -> bool:
        fields: Document = {}
        unset: Document = {}
        for field_name in _SETTLED_FIELDS:
            if field_name not in update:
                continue
            value = update[field_name]
            if value is None:
                unset[field_name] = ""
            else:
                fields[field_name] = _millis(value) if field_name in _DELIVERY_TIMES else value
        if kind == "trigger":
            # Read, check and replace the whole trigger, guarded by its revision.
            with self._db.operation():
                station = self._stations.find_one({"_id": cs_id}, {"_id": 0, "trigger": 1})
                trigger = (station or {}).get("trigger")
                if not trigger or trigger.get("message") != key or trigger.get("revision") != revision:
                    return False
                replaced = {k: v for k, v in trigger.items() if k not in unset}
                replaced.update(fields)
                # An item staged before revisions existed has none: it can only be replaced by one that has.
                guard = {"trigger.message": key} if revision is None else {"trigger.revision": revision}
                result = self._stations.update_one({"_id": cs_id, **guard}, {"$set": {"trigger": replaced}})
            return bool(result.modified_count or result.matched_count)
        collection = self._settings if kind == "setting" else self._install_certificates
        operation: Document = {}
        if fields:
            operation["$set"] = fields
        if unset:
            operation["$unset"] = unset
        if not operation:
            return False
        with self._db.operation():
            stored = collection.find_one({"_id": _member_key(cs_id, key)}, {"revision": 1})
            if stored is None or stored.get("revision") != revision:
                return False
            query: Document = {"_id": _member_key(cs_id, key)}
            if revision is not None:
                query["revision"] = revision
            result = collection.update_one(query, operation)
        return bool(result.matched_count)

    def next_transaction_id(self) -> int:
        with self._db.operation():
            stored = self._db.collection("counters").find_one_and_update(
                {"_id": "transaction"}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
            )
        if stored is None:  # upsert with ReturnDocument.AFTER always returns the document
            raise StorageUnavailable("MongoDB returned no transaction counter")
        return int(stored["value"] - 1) % 2_147_483_647 + 1

    def set_password_hash(self, cs_id: str, password_hash: str) -> None:
        with self._db.operation():
            self._stations.update_one({"_id": cs_id}, {"$set": {"password_hash": password_hash}})

    def stations(self, offset: int, limit: int) -> list[Document]:
        docs.check_page(offset, limit)
        if limit == 0:  # Mongo reads limit(0) as "no limit"
            return []
        with self._db.operation():
            found = list(
                self._stations.find({}, {"_id": 1, "trigger": 1}).sort([("_id", ASCENDING)]).skip(offset).limit(limit)
            )
            ids = [d["_id"] for d in found]
            runtime = {d["_id"]: d for d in self._runtime.find({"_id": {"$in": ids}})} if ids else {}
            pending: dict[str, int] = {}
            for collection in (self._settings, self._install_certificates):
                for d in collection.find({"cs_id": {"$in": ids}, "status": "Pending"}, {"cs_id": 1}) if ids else []:
                    pending[d["cs_id"]] = pending.get(d["cs_id"], 0) + 1
        page = []
        for d in found:
            cs_id = d["_id"]
            trigger_pending = 1 if (d.get("trigger") or {}).get("status") == "Pending" else 0
            station: Document = {
                "cs_id": cs_id,
                "connected": bool(runtime.get(cs_id, {}).get("connection")),
                "pending": pending.get(cs_id, 0) + trigger_pending,
            }
            if runtime.get(cs_id, {}).get("ocpp_version"):
                station["ocpp_version"] = runtime[cs_id]["ocpp_version"]
            if runtime.get(cs_id, {}).get("last_seen") is not None:
                station["last_seen"] = DatetimeMS(runtime[cs_id]["last_seen"]).as_datetime(_UTC_CODEC)
            page.append(station)
        return page
