"""The MongoDB repository of ocpp."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bson.datetime_ms import DatetimeMS
from pymongo import ASCENDING, ReturnDocument, UpdateOne

from .. import _documents as docs
from ..base import (
    Document,
    OcppRepository,
    StorageUnavailable,
)
from .charge_stations import next_change
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


#: Most changes one poll returns; the rest come with the next.
CHANGES_PAGE = 5000
#: Documents in the first reply of a find (MongoDB's default is 101), so a page of stations' items is one
#: round trip.
_FIRST_BATCH = 5000
#: How long after a change takes its number it may land on its station, at the latest.
LATE_SECONDS = 2.0
#: Numbers skipped over in one poll that are remembered one by one; beyond, the first of them is the floor.
MAX_NEW_HOLES = 10_000


@dataclass(frozen=True)
class ChangeCursor:
    """A poller's position in the change sequence: the last number seen and the holes below it, each with the
    ``time.monotonic()`` after which the next poll is the last to ask for it; and, when too many were skipped
    over to name, the first of them, asked for with every later number until its own such time."""

    last: int
    holes: tuple[tuple[int, float], ...]
    floor: tuple[int, float] | None = None


_SETTING_FIELDS = {"_id": 0, "cs_id": 1, "name": 1, "value": 1, **{key: 1 for key in _DELIVERY_KEYS}}


_CERTIFICATE_FIELDS = {"_id": 0, "cs_id": 1, "certificate_id": 1, "type": 1, "pem": 1,
                       **{key: 1 for key in _DELIVERY_KEYS}}


def _runtime(stored: Mapping[str, Any]) -> Document:
    document: Document = {"cs_id": stored["_id"], **{k: v for k, v in stored.items() if k not in ("_id", "change_seq")}}
    for key in _RUNTIME_TIMES:
        if key in document:
            document[key] = DatetimeMS(document[key]).as_datetime(_UTC_CODEC)
    return document


class MongoOcppRepository(OcppRepository):
    """Runtime details in ``charge_station_runtime`` (``_id`` = cs_id, times in milliseconds); delivery fields
    on the staged items' own documents."""

    def __init__(self, db: MongoStorage) -> None:
        self._db = db
        self._runtime = db.collection("charge_station_runtime")
        self._stations = db.collection("charge_stations")
        self._settings = db.collection("charge_station_settings")
        self._install_certificates = db.collection("charge_station_install_certificates")

    def connect(self, cs_id: str, connection: str, ocpp_version: str, now: datetime) -> Document:
        at = _millis(now)
        with self._db.operation():
            number = next_change(self._db)
            stored = self._runtime.find_one_and_update(
                {"_id": cs_id},
                {
                    "$inc": {"seq": 1},
                    "$set": {"changed_at": at, "change_seq": number, "connection": connection,
                             "ocpp_version": ocpp_version, "last_seen": at},
                },
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        if stored is None:  # upsert with ReturnDocument.AFTER always returns the document
            raise StorageUnavailable("MongoDB returned no runtime document")
        return _runtime(stored)

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

    def touch_many(self, seen: Mapping[str, datetime]) -> None:
        if not seen:
            return
        with self._db.operation():
            self._runtime.bulk_write(
                [UpdateOne({"_id": cs_id}, {"$set": {"last_seen": _millis(at)}}) for cs_id, at in seen.items()],
                ordered=False,
            )

    def runtime(self, cs_id: str) -> Document | None:
        with self._db.operation():
            stored = self._runtime.find_one({"_id": cs_id})
        return None if stored is None else _runtime(stored)

    def changes(self, cursor: object | None) -> tuple[list[Document], object]:
        # A change takes its number before it lands on its station, so one can land after a later number has
        # been seen: every number skipped over is a hole, asked for again until a poll that began LATE_SECONDS
        # after the hole was found has run (the station may also have changed again, and shows its latest number).
        # With no hole, a poll is the index range after the last number seen.
        if cursor is None:
            with self._db.operation():
                counter = self._db.collection("counters").find_one({"_id": "changes"})
            return [], ChangeCursor(int((counter or {}).get("value", 0)), ())
        if not isinstance(cursor, ChangeCursor):
            raise TypeError("not a cursor of this store")
        started = time.monotonic()
        holes = dict(cursor.holes)
        floor = cursor.floor
        # One range of the index: from the oldest hole on (what was seen since is read again; the poller knows it
        # by its count), else after the last number seen. (An $or of the range and the holes is no cheaper on
        # MongoDB and scans the collection on nx-27017.)
        low = min([*holes, *([floor[0]] if floor else []), cursor.last + 1])
        query: Document = {"change_seq": {"$gte": low}}
        with self._db.operation():
            found = list(
                self._runtime.find(query, {"seq": 1, "connection": 1, "change_seq": 1})
                .sort([("change_seq", ASCENDING)])
                .limit(CHANGES_PAGE)
                .batch_size(CHANGES_PAGE)
            )
        ended = time.monotonic()
        numbers = {d["change_seq"] for d in found}
        last = max([cursor.last, *numbers])
        for number in numbers:
            holes.pop(number, None)
        holes = {number: until for number, until in holes.items() if until >= started}
        if floor is not None and floor[1] < started:
            floor = None
        if last - cursor.last > MAX_NEW_HOLES:
            # More skipped over than is worth naming: every number from the first of them is asked for again.
            first = next(n for n in range(cursor.last + 1, last + 1) if n not in numbers)
            floor = (min(first, floor[0]) if floor else first, ended + LATE_SECONDS)
        else:
            for number in range(cursor.last + 1, last):
                if number not in numbers:
                    holes[number] = ended + LATE_SECONDS
        changes = [
            {"cs_id": d["_id"], "seq": d["seq"], **({"connection": d["connection"]} if d.get("connection") else {})}
            for d in found
        ]
        return changes, ChangeCursor(last, tuple(sorted(holes.items())), floor)

    def deliveries(self, cs_id: str) -> Document:
        return self.deliveries_of([cs_id])[cs_id]

    def deliveries_of(self, cs_ids: Sequence[str]) -> dict[str, Document]:
        found: dict[str, Document] = {cs_id: {"settings": [], "certificates": [], "trigger": None} for cs_id in cs_ids}
        ids = list(found)
        if not ids:
            return found
        station_query: Document = {"_id": ids[0]} if len(ids) == 1 else {"_id": {"$in": ids}}
        item_query: Document = {"cs_id": ids[0]} if len(ids) == 1 else {"cs_id": {"$in": ids}}
        with self._db.operation():
            settings = list(
                self._settings.find(item_query, _SETTING_FIELDS)
                .sort([("cs_id", ASCENDING), ("name", ASCENDING)])
                .batch_size(_FIRST_BATCH)
            )
            certificates = list(
                self._install_certificates.find(item_query, _CERTIFICATE_FIELDS)
                .sort([("cs_id", ASCENDING), ("certificate_id", ASCENDING)])
                .batch_size(_FIRST_BATCH)
            )
            stations = list(
                self._stations.find({**station_query, "trigger": {"$ne": None}}, {"trigger": 1}).batch_size(
                    _FIRST_BATCH
                )
            )
        for d in settings:
            found[d["cs_id"]]["settings"].append(_delivery(d, ("name", "value")))
        for d in certificates:
            found[d["cs_id"]]["certificates"].append(_delivery(d, ("certificate_id", "type", "pem")))
        for d in stations:
            if d.get("trigger"):
                found[d["_id"]]["trigger"] = _delivery(d["trigger"], ("message",))
        return found

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
        operation: Document = {}
        if kind == "trigger":
            # One update guarded by the trigger's message and revision (None matches an item staged before
            # revisions existed, which has none).
            if fields:
                operation["$set"] = {f"trigger.{k}": v for k, v in fields.items()}
            if unset:
                operation["$unset"] = {f"trigger.{k}": "" for k in unset}
            if not operation:
                return False
            with self._db.operation():
                result = self._stations.update_one(
                    {"_id": cs_id, "trigger.message": key, "trigger.revision": revision}, operation
                )
            return bool(result.matched_count)
        collection = self._settings if kind == "setting" else self._install_certificates
        if fields:
            operation["$set"] = fields
        if unset:
            operation["$unset"] = unset
        if not operation:
            return False
        with self._db.operation():
            result = collection.update_one({"_id": _member_key(cs_id, key), "revision": revision}, operation)
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
