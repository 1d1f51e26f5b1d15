"""The SQLite repository of ocpp."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import _documents as docs
from ..base import (
    Document,
    OcppRepository,
)
from .engine import _datetime, _millis

if TYPE_CHECKING:
    from . import SqliteStorage


_RUNTIME_COLUMNS = (
    "cs_id",
    "seq",
    "changed_at",
    "connection",
    "ocpp_version",
    "vendor",
    "model",
    "serial_number",
    "firmware_version",
    "last_boot",
    "last_seen",
)


_RUNTIME_TIMES = ("changed_at", "last_boot", "last_seen")


#: The columns of each kind of staged item: table, key column, then column name by document key.
_ITEM_TABLES = {
    "setting": ("charge_station_settings", "name", ""),
    "certificate": ("charge_station_install_certificates", "certificate_id", ""),
    "trigger": ("charge_stations", "trigger_message", "trigger_"),
}


_SETTLED_FIELDS = ("status", "detail", "attempts", "due_at", "updated_at")


_DELIVERY_TIMES = ("due_at", "updated_at")


def _delivery(row: Mapping[str, Any]) -> Document:
    """A staged item with its delivery fields: unset ones absent, times as datetimes, attempts 0 if never set."""
    item: Document = {key: value for key, value in row.items() if value is not None}
    item.setdefault("attempts", 0)
    item["due_at"] = _datetime(item.get("due_at", 0))
    if "updated_at" in item:
        item["updated_at"] = _datetime(item["updated_at"])
    return item


class SqliteOcppRepository(OcppRepository):
    """Runtime details in ``charge_station_runtime``; delivery fields in the columns of the staged items."""

    def __init__(self, db: SqliteStorage) -> None:
        self._db = db

    def connect(self, cs_id: str, connection: str, ocpp_version: str, now: datetime) -> None:
        at = _millis(now)
        self._db.execute(
            """INSERT INTO charge_station_runtime (cs_id, seq, changed_at, connection, ocpp_version, last_seen)
               VALUES (?, 1, ?, ?, ?, ?)
               ON CONFLICT (cs_id) DO UPDATE SET seq = seq + 1, changed_at = excluded.changed_at,
                   connection = excluded.connection, ocpp_version = excluded.ocpp_version,
                   last_seen = excluded.last_seen""",
            (cs_id, at, connection, ocpp_version, at),
        )

    def disconnect(self, cs_id: str, connection: str, now: datetime) -> bool:
        changed = self._db.execute(
            "UPDATE charge_station_runtime SET connection = NULL, last_seen = ? WHERE cs_id = ? AND connection = ?",
            (_millis(now), cs_id, connection),
        )
        return changed > 0

    def record_boot(self, cs_id: str, boot: Mapping[str, str], now: datetime) -> None:
        at = _millis(now)
        with self._db.transaction() as connection:
            connection.execute(
                """INSERT INTO charge_station_runtime (cs_id, seq, changed_at, vendor, model, serial_number,
                       firmware_version, last_boot, last_seen) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (cs_id) DO UPDATE SET vendor = excluded.vendor, model = excluded.model,
                       serial_number = excluded.serial_number, firmware_version = excluded.firmware_version,
                       last_boot = excluded.last_boot, last_seen = excluded.last_seen""",
                (
                    cs_id,
                    at,
                    boot["vendor"],
                    boot["model"],
                    boot.get("serial_number"),
                    boot.get("firmware_version"),
                    at,
                    at,
                ),
            )
            connection.execute(
                """UPDATE charge_station_settings SET status = 'Accepted', updated_at = ?
                   WHERE cs_id = ? AND status = 'RebootRequired'""",
                (at, cs_id),
            )

    def touch(self, cs_id: str, now: datetime) -> None:
        self._db.execute("UPDATE charge_station_runtime SET last_seen = ? WHERE cs_id = ?", (_millis(now), cs_id))

    def runtime(self, cs_id: str) -> Document | None:
        row = self._db.fetch_one(
            f"SELECT {', '.join(_RUNTIME_COLUMNS)} FROM charge_station_runtime WHERE cs_id = ?", (cs_id,)
        )
        if row is None:
            return None
        document: Document = {c: v for c, v in zip(_RUNTIME_COLUMNS, row, strict=True) if v is not None}
        for key in _RUNTIME_TIMES:
            if key in document:
                document[key] = _datetime(document[key])
        return document

    def changes(self, since: datetime) -> list[Document]:
        rows = self._db.fetch_all(
            "SELECT cs_id, seq, connection FROM charge_station_runtime WHERE changed_at >= ?", (_millis(since),)
        )
        return [
            {"cs_id": cs_id, "seq": seq, **({} if connection is None else {"connection": connection})}
            for cs_id, seq, connection in rows
        ]

    def deliveries(self, cs_id: str) -> Document:
        fields = "status, revision, attempts, due_at, updated_at, detail"
        settings = self._db.fetch_all(
            f"SELECT name, value, {fields} FROM charge_station_settings WHERE cs_id = ? ORDER BY name", (cs_id,)
        )
        certificates = self._db.fetch_all(
            f"""SELECT certificate_id, type, pem, {fields} FROM charge_station_install_certificates
                WHERE cs_id = ? ORDER BY certificate_id""",
            (cs_id,),
        )
        trigger = self._db.fetch_one(
            """SELECT trigger_message, trigger_status, trigger_revision, trigger_attempts, trigger_due_at,
                   trigger_updated_at, trigger_detail FROM charge_stations WHERE cs_id = ?""",
            (cs_id,),
        )
        names = fields.split(", ")
        return {
            "settings": [_delivery(dict(zip(("name", "value", *names), row, strict=True))) for row in settings],
            "certificates": [
                _delivery(dict(zip(("certificate_id", "type", "pem", *names), row, strict=True)))
                for row in certificates
            ],
            "trigger": None
            if trigger is None or trigger[0] is None
            else _delivery(dict(zip(("message", *names), trigger, strict=True))),
        }

    def settle(self, cs_id: str, kind: str, key: str, revision: str | None, update: Mapping[str, Any]) -> bool:
        table, key_column, prefix = _ITEM_TABLES[kind]
        assignments, values = [], []
        for field_name in _SETTLED_FIELDS:
            if field_name in update:
                value = update[field_name]
                assignments.append(f"{prefix}{field_name} = ?")
                values.append(_millis(value) if field_name in _DELIVERY_TIMES and value is not None else value)
        if not assignments:
            return False
        changed = self._db.execute(
            f"""UPDATE {table} SET {", ".join(assignments)}
                WHERE cs_id = ? AND {key_column} = ? AND {prefix}revision IS ?""",
            (*values, cs_id, key, revision),
        )
        return changed > 0

    def next_transaction_id(self) -> int:
        with self._db.transaction() as connection:
            connection.execute(
                """INSERT INTO counters (name, value) VALUES ('transaction', 1)
                   ON CONFLICT (name) DO UPDATE SET value = value % 2147483647 + 1"""
            )
            row = connection.execute("SELECT value FROM counters WHERE name = 'transaction'").fetchone()
        return int(row[0])

    def set_password_hash(self, cs_id: str, password_hash: str) -> None:
        self._db.execute("UPDATE charge_stations SET password_hash = ? WHERE cs_id = ?", (password_hash, cs_id))

    def stations(self, offset: int, limit: int) -> list[Document]:
        docs.check_page(offset, limit)
        rows = self._db.fetch_all(
            """SELECT c.cs_id, r.connection, r.ocpp_version, r.last_seen,
                   (SELECT count(*) FROM charge_station_settings s WHERE s.cs_id = c.cs_id AND s.status = 'Pending')
                   + (SELECT count(*) FROM charge_station_install_certificates i
                      WHERE i.cs_id = c.cs_id AND i.status = 'Pending')
                   + (CASE WHEN c.trigger_status = 'Pending' THEN 1 ELSE 0 END)
               FROM charge_stations c LEFT JOIN charge_station_runtime r ON r.cs_id = c.cs_id
               ORDER BY c.cs_id LIMIT ? OFFSET ?""",
            (limit, offset),
        )
        page = []
        for cs_id, connection, ocpp_version, last_seen, pending in rows:
            station: Document = {"cs_id": cs_id, "connected": connection is not None, "pending": pending}
            if ocpp_version is not None:
                station["ocpp_version"] = ocpp_version
            if last_seen is not None:
                station["last_seen"] = _datetime(last_seen)
            page.append(station)
        return page
