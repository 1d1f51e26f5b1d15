"""The SQLite repository of charge stations."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .. import _documents as docs
from ..base import (
    ChargeStationRepository,
    Document,
    NotFound,
)
from .engine import _millis

if TYPE_CHECKING:
    from . import SqliteStorage


class SqliteChargeStationRepository(ChargeStationRepository):
    """Charge stations in ``charge_stations`` (auth and trigger) and two per-station child tables."""

    def __init__(self, db: SqliteStorage) -> None:
        self._db = db

    def put_auth(self, cs_id: str, auth: Mapping[str, Any]) -> None:
        document = docs.auth_document(auth)
        self._db.execute(
            """INSERT INTO charge_stations
                   (cs_id, security_profile, password_hash, invalid_username_allowed, provisioning, updated_at)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (cs_id) DO UPDATE SET
                   security_profile = excluded.security_profile,
                   password_hash = excluded.password_hash,
                   invalid_username_allowed = excluded.invalid_username_allowed,
                   provisioning = excluded.provisioning,
                   updated_at = excluded.updated_at""",
            (
                cs_id,
                document["security_profile"],
                document.get("password_hash"),
                document["invalid_username_allowed"],
                docs.PROVISIONING_PENDING,
                _millis(docs.now()),
            ),
        )

    def find_auth(self, cs_id: str) -> Document | None:
        row = self._db.fetch_one(
            "SELECT security_profile, password_hash, invalid_username_allowed FROM charge_stations WHERE cs_id = ?",
            (cs_id,),
        )
        if row is None:
            return None
        document: Document = {"security_profile": row[0]}
        if row[1] is not None:
            document["password_hash"] = row[1]
        document["invalid_username_allowed"] = bool(row[2])
        return document

    def merge_settings(self, cs_id: str, settings: Iterable[Mapping[str, str]]) -> None:
        # Staging (again) makes a new delivery: a new revision, never attempted, due now.
        at, revision = _millis(docs.now()), uuid.uuid4().hex
        rows = [(cs_id, s["name"], s["value"], s["status"], revision, at) for s in docs.setting_rows(settings)]
        with self._db.transaction() as connection:
            if not self._db.station_exists(connection, cs_id):
                raise NotFound("charge station", cs_id)
            connection.executemany(
                """INSERT INTO charge_station_settings (cs_id, name, value, status, revision, attempts, due_at,
                       updated_at, detail) VALUES (?, ?, ?, ?, ?, 0, 0, ?, NULL)
                   ON CONFLICT (cs_id, name) DO UPDATE SET value = excluded.value, status = excluded.status,
                       revision = excluded.revision, attempts = 0, due_at = 0, updated_at = excluded.updated_at,
                       detail = NULL""",
                rows,
            )
            _bump(connection, cs_id, at)

    def settings(self, cs_id: str) -> list[Document]:
        rows = self._db.fetch_all(
            "SELECT name, value, status FROM charge_station_settings WHERE cs_id = ? ORDER BY name", (cs_id,)
        )
        return [{"name": name, "value": value, "status": status} for name, value, status in rows]

    def merge_install_certificates(self, cs_id: str, certificates: Iterable[Mapping[str, str]]) -> None:
        at, revision = _millis(docs.now()), uuid.uuid4().hex
        rows = [
            (cs_id, c["certificate_id"], c["type"], c["pem"], c["status"], revision, at)
            for c in docs.install_certificate_rows(certificates)
        ]
        with self._db.transaction() as connection:
            if not self._db.station_exists(connection, cs_id):
                raise NotFound("charge station", cs_id)
            connection.executemany(
                """INSERT INTO charge_station_install_certificates (cs_id, certificate_id, type, pem, status,
                       revision, attempts, due_at, updated_at, detail)
                   VALUES (?, ?, ?, ?, ?, ?, 0, 0, ?, NULL)
                   ON CONFLICT (cs_id, certificate_id) DO UPDATE SET
                       type = excluded.type, pem = excluded.pem, status = excluded.status,
                       revision = excluded.revision, attempts = 0, due_at = 0, updated_at = excluded.updated_at,
                       detail = NULL""",
                rows,
            )
            _bump(connection, cs_id, at)

    def install_certificates(self, cs_id: str) -> list[Document]:
        rows = self._db.fetch_all(
            """SELECT certificate_id, type, pem, status FROM charge_station_install_certificates
               WHERE cs_id = ? ORDER BY certificate_id""",
            (cs_id,),
        )
        return [
            {"certificate_id": certificate_id, "type": type_, "pem": pem, "status": status}
            for certificate_id, type_, pem, status in rows
        ]

    def put_trigger(self, cs_id: str, trigger: Mapping[str, str]) -> None:
        document = docs.trigger_document(trigger)
        at = _millis(docs.now())
        with self._db.transaction() as connection:
            changed = connection.execute(
                """UPDATE charge_stations SET trigger_message = ?, trigger_status = ?, trigger_revision = ?,
                       trigger_attempts = 0, trigger_due_at = 0, trigger_updated_at = ?, trigger_detail = NULL
                   WHERE cs_id = ?""",
                (document["message"], document["status"], uuid.uuid4().hex, at, cs_id),
            ).rowcount
            if changed == 0:
                raise NotFound("charge station", cs_id)
            _bump(connection, cs_id, at)

    def find_trigger(self, cs_id: str) -> Document | None:
        row = self._db.fetch_one(
            "SELECT trigger_message, trigger_status FROM charge_stations WHERE cs_id = ?", (cs_id,)
        )
        if row is None or (row[0] is None and row[1] is None):
            return None
        return {"message": row[0], "status": row[1]}


def _bump(connection: sqlite3.Connection, cs_id: str, at: int) -> None:
    """Count one more change of the station (inside the caller's transaction), so every worker sees it."""
    connection.execute(
        """INSERT INTO charge_station_runtime (cs_id, seq, changed_at, change_seq) VALUES (?, 1, ?, ?)
           ON CONFLICT (cs_id) DO UPDATE SET seq = seq + 1, changed_at = excluded.changed_at,
               change_seq = excluded.change_seq""",
        (cs_id, at, next_change(connection)),
    )


def next_change(connection: sqlite3.Connection) -> int:
    """The store's next change number, inside the caller's write transaction: SQLite lets one writer at a time
    hold the write lock until it commits, so changes commit in the order of their numbers."""
    row = connection.execute(
        """INSERT INTO counters (name, value) VALUES ('changes', 1)
           ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value"""
    ).fetchone()
    return int(row[0])
