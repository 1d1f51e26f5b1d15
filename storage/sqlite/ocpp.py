"""The SQLite repository of ocpp."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import _documents as docs
from ..base import (
    Document,
    OcppRepository,
)
from .charge_stations import next_change
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


#: Most changes one poll returns; the rest come with the next.
CHANGES_PAGE = 5000


#: Station ids per ``IN (...)`` list, below SQLite's limit on parameters.
_IN_BATCH = 500


_DELIVERY_FIELDS = "status, revision, attempts, due_at, updated_at, detail"


def _runtime(row: tuple[Any, ...]) -> Document:
    document: Document = {c: v for c, v in zip(_RUNTIME_COLUMNS, row, strict=True) if v is not None}
    for key in _RUNTIME_TIMES:
        if key in document:
            document[key] = _datetime(document[key])
    return document


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

    def connect(self, cs_id: str, connection: str, ocpp_version: str, now: datetime) -> Document:
        at = _millis(now)
        with self._db.transaction() as transaction:
            row = transaction.execute(
                f"""INSERT INTO charge_station_runtime (cs_id, seq, changed_at, change_seq, connection, ocpp_version,
                       last_seen) VALUES (?, 1, ?, ?, ?, ?, ?)
                   ON CONFLICT (cs_id) DO UPDATE SET seq = seq + 1, changed_at = excluded.changed_at,
                       change_seq = excluded.change_seq, connection = excluded.connection,
                       ocpp_version = excluded.ocpp_version, last_seen = excluded.last_seen
                   RETURNING {', '.join(_RUNTIME_COLUMNS)}""",
                (cs_id, at, next_change(transaction), connection, ocpp_version, at),
            ).fetchone()
        return _runtime(row)

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

    def touch_many(self, seen: Mapping[str, datetime]) -> None:
        if not seen:
            return
        with self._db.transaction() as transaction:
            transaction.executemany(
                "UPDATE charge_station_runtime SET last_seen = ? WHERE cs_id = ?",
                [(_millis(at), cs_id) for cs_id, at in seen.items()],
            )

    def runtime(self, cs_id: str) -> Document | None:
        row = self._db.fetch_one(
            f"SELECT {', '.join(_RUNTIME_COLUMNS)} FROM charge_station_runtime WHERE cs_id = ?", (cs_id,)
        )
        return None if row is None else _runtime(row)

    def changes(self, cursor: object | None) -> tuple[list[Document], object]:
        # Numbers are taken inside the writes' transactions, which commit one at a time in that order: a change
        # after the cursor cannot commit with a number below it, so the cursor is the last number seen.
        if cursor is None:
            row = self._db.fetch_one("SELECT value FROM counters WHERE name = 'changes'", ())
            return [], 0 if row is None else int(row[0])
        if not isinstance(cursor, int):
            raise TypeError("not a cursor of this store")
        rows = self._db.fetch_all(
            """SELECT cs_id, seq, connection, change_seq FROM charge_station_runtime WHERE change_seq > ?
               ORDER BY change_seq LIMIT ?""",
            (cursor, CHANGES_PAGE),
        )
        changes = [
            {"cs_id": cs_id, "seq": seq, **({} if connection is None else {"connection": connection})}
            for cs_id, seq, connection, _number in rows
        ]
        return changes, rows[-1][3] if rows else cursor

    def deliveries(self, cs_id: str) -> Document:
        return self.deliveries_of([cs_id])[cs_id]

    def deliveries_of(self, cs_ids: Sequence[str]) -> dict[str, Document]:
        found: dict[str, Document] = {cs_id: {"settings": [], "certificates": [], "trigger": None} for cs_id in cs_ids}
        ids = list(found)
        names = _DELIVERY_FIELDS.split(", ")
        for start in range(0, len(ids), _IN_BATCH):
            batch = ids[start : start + _IN_BATCH]
            marks = ", ".join("?" * len(batch))
            settings = self._db.fetch_all(
                f"""SELECT cs_id, name, value, {_DELIVERY_FIELDS} FROM charge_station_settings
                    WHERE cs_id IN ({marks}) ORDER BY cs_id, name""",
                tuple(batch),
            )
            for cs_id, *row in settings:
                found[cs_id]["settings"].append(_delivery(dict(zip(("name", "value", *names), row, strict=True))))
            certificates = self._db.fetch_all(
                f"""SELECT cs_id, certificate_id, type, pem, {_DELIVERY_FIELDS} FROM charge_station_install_certificates
                    WHERE cs_id IN ({marks}) ORDER BY cs_id, certificate_id""",
                tuple(batch),
            )
            for cs_id, *row in certificates:
                found[cs_id]["certificates"].append(
                    _delivery(dict(zip(("certificate_id", "type", "pem", *names), row, strict=True)))
                )
            triggers = self._db.fetch_all(
                f"""SELECT cs_id, trigger_message, trigger_status, trigger_revision, trigger_attempts, trigger_due_at,
                       trigger_updated_at, trigger_detail FROM charge_stations
                    WHERE cs_id IN ({marks}) AND trigger_message IS NOT NULL""",
                tuple(batch),
            )
            for cs_id, *row in triggers:
                found[cs_id]["trigger"] = _delivery(dict(zip(("message", *names), row, strict=True)))
        return found

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
