"""The SQLite engine: stdlib sqlite3 in WAL mode, one connection per thread, safe across worker processes."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bson import json_util
from bson.codec_options import CodecOptions
from bson.datetime_ms import DatetimeMS
from bson.json_util import JSONMode, JSONOptions

from . import _documents as docs
from .base import (
    CertificateRepository,
    ChargeStationRepository,
    Conflict,
    Document,
    LocationRepository,
    NotFound,
    OcppRepository,
    PartyRepository,
    PushRepository,
    RegistrationRepository,
    Storage,
    StorageUnavailable,
    TokenRepository,
    party_identity,
    push_id,
    token_key,
)

__all__ = [
    "SqliteCertificateRepository",
    "SqliteChargeStationRepository",
    "SqliteLocationRepository",
    "SqliteOcppRepository",
    "SqlitePartyRepository",
    "SqlitePushRepository",
    "SqliteRegistrationRepository",
    "SqliteStorage",
    "SqliteTokenRepository",
]

log = logging.getLogger(__name__)

URL_PREFIX = "sqlite:///"
#: Bumped whenever SCHEMA changes; a database at this version is not touched at open. Every statement
#: is idempotent, so an older database gets what it lacks and keeps its data (2 added the OCPI tables;
#: 3 keys tokens case-insensitively, hashes inbound OCPI tokens, stores documents as plain JSON (see
#: ``_upgrade``), and adds the OCPP runtime table, the delivery columns of staged items (see COLUMNS) and the
#: push results).
SCHEMA_VERSION = 3
# Text keys use the default BINARY collation: UTF-8 byte order, which is code-point order.
# Datetimes are INTEGER milliseconds since the epoch (UTC), exactly what BSON stores.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS charge_stations (
        cs_id TEXT PRIMARY KEY NOT NULL,
        security_profile INTEGER,
        password_hash TEXT,
        invalid_username_allowed INTEGER,
        provisioning TEXT,
        updated_at INTEGER,
        trigger_message TEXT,
        trigger_status TEXT
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS charge_station_settings (
        cs_id TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT,
        status TEXT,
        PRIMARY KEY (cs_id, name)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS charge_station_install_certificates (
        cs_id TEXT NOT NULL,
        certificate_id TEXT NOT NULL,
        type TEXT,
        pem TEXT,
        status TEXT,
        PRIMARY KEY (cs_id, certificate_id)
    )""",
    """CREATE TABLE IF NOT EXISTS tokens (
        key TEXT PRIMARY KEY NOT NULL,
        uid TEXT NOT NULL,
        country_code TEXT,
        party_id TEXT,
        type TEXT,
        contract_id TEXT,
        issuer TEXT,
        valid INTEGER,
        cache_mode TEXT,
        last_updated INTEGER,
        visual_number TEXT,
        group_id TEXT,
        language_code TEXT,
        emaid TEXT,
        energy_contract TEXT,
        default_profile_type TEXT
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS tokens_by_emaid ON tokens (emaid)",
    """CREATE TABLE IF NOT EXISTS certificates (
        hash TEXT PRIMARY KEY NOT NULL,
        pem TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS ocpi_registrations (
        token_hash TEXT PRIMARY KEY NOT NULL,
        status TEXT NOT NULL,
        country_code TEXT,
        party_id TEXT,
        expires_at INTEGER
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS locations (
        id TEXT PRIMARY KEY NOT NULL,
        last_updated INTEGER,
        document TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS locations_by_last_updated ON locations (last_updated, id)",
    """CREATE TABLE IF NOT EXISTS ocpi_parties (
        key TEXT PRIMARY KEY NOT NULL,
        inbound_token_hash TEXT NOT NULL UNIQUE,
        document TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS ocpi_party_identities (
        identity TEXT PRIMARY KEY NOT NULL,
        party TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS ocpi_party_identities_by_party ON ocpi_party_identities (party)",
    """CREATE TABLE IF NOT EXISTS location_pushes (
        id TEXT PRIMARY KEY NOT NULL,
        party TEXT NOT NULL,
        location_id TEXT NOT NULL,
        revision TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        due_at INTEGER NOT NULL,
        lease_until INTEGER NOT NULL,
        lease TEXT,
        last_error TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS location_pushes_by_due_at ON location_pushes (due_at, id)",
    "CREATE INDEX IF NOT EXISTS location_pushes_by_party ON location_pushes (party)",
    """CREATE TABLE IF NOT EXISTS location_push_results (
        id TEXT PRIMARY KEY NOT NULL,
        party TEXT NOT NULL,
        location_id TEXT NOT NULL,
        revision TEXT NOT NULL,
        state TEXT NOT NULL,
        at INTEGER NOT NULL,
        since INTEGER,
        attempts INTEGER,
        http_status INTEGER,
        status_code INTEGER,
        status_message TEXT,
        error TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS location_push_results_by_location ON location_push_results (location_id, party)",
    """CREATE TABLE IF NOT EXISTS charge_station_runtime (
        cs_id TEXT PRIMARY KEY NOT NULL,
        seq INTEGER NOT NULL,
        changed_at INTEGER NOT NULL,
        connection TEXT,
        ocpp_version TEXT,
        vendor TEXT,
        model TEXT,
        serial_number TEXT,
        firmware_version TEXT,
        last_boot INTEGER,
        last_seen INTEGER
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS charge_station_runtime_by_changed_at ON charge_station_runtime (changed_at)",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID",
)
#: Columns added to tables of an earlier schema (ALTER TABLE has no IF NOT EXISTS: each is added if missing).
#: Items staged before they existed read as never attempted and due now.
_DELIVERY_COLUMNS = (("revision", "TEXT"), ("attempts", "INTEGER"), ("due_at", "INTEGER"), ("updated_at", "INTEGER"))
COLUMNS = (
    *(("charge_station_settings", name, type_) for name, type_ in (*_DELIVERY_COLUMNS, ("detail", "TEXT"))),
    *(("charge_station_install_certificates", name, type_) for name, type_ in (*_DELIVERY_COLUMNS, ("detail", "TEXT"))),
    *(("charge_stations", f"trigger_{name}", type_) for name, type_ in (*_DELIVERY_COLUMNS, ("detail", "TEXT"))),
)

# Primary result codes that mean our SQL or the caller's data is wrong, not that the store is unwell:
# SQLITE_ERROR (bad SQL), SQLITE_TOOBIG, SQLITE_CONSTRAINT, SQLITE_MISMATCH, SQLITE_MISUSE, SQLITE_RANGE.
_NOT_UNAVAILABLE_CODES = frozenset({1, 18, 19, 20, 21, 25})
_SQLITE_READONLY = 8
_CALLER_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.ProgrammingError,
    sqlite3.DataError,
    sqlite3.NotSupportedError,
    sqlite3.InterfaceError,
)

_UTC_CODEC: CodecOptions[Document] = CodecOptions(tz_aware=True, tzinfo=docs.UTC)
_JSON_OPTIONS = JSONOptions(json_mode=JSONMode.RELAXED, tz_aware=True, tzinfo=docs.UTC)


def _millis(value: datetime) -> int:
    """Milliseconds since the epoch, converted and truncated exactly as BSON does (naive means UTC)."""
    return int(DatetimeMS(value))


def _datetime(millis: int) -> datetime:
    """The tz-aware UTC datetime for milliseconds since the epoch."""
    return DatetimeMS(millis).as_datetime(_UTC_CODEC)


def _is_unavailable(exc: sqlite3.Error) -> bool:
    """Whether the error comes from the store (locked, read-only, I/O, corrupt) rather than from the request."""
    if isinstance(exc, _CALLER_ERRORS) or not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    return code is None or code & 0xFF not in _NOT_UNAVAILABLE_CODES


def _is_read_only(exc: sqlite3.Error) -> bool:
    """Whether the error is SQLITE_READONLY or one of its extended codes (such as SQLITE_READONLY_DBMOVED)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == _SQLITE_READONLY


def path_from_url(url: str) -> Path:
    """The database path of ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``.

    Raises ValueError for another scheme, an empty path, ``:memory:`` (every thread would see its own
    database) and query parameters.
    """
    if not url.startswith(URL_PREFIX):
        raise ValueError("SQLite URL must be sqlite:///relative/path.db or sqlite:////absolute/path.db")
    path = url[len(URL_PREFIX) :]
    if not path:
        raise ValueError("SQLite URL has no database path")
    if path == ":memory:":
        raise ValueError("in-memory SQLite is not supported: every thread would see its own database")
    if "?" in path:
        raise ValueError("SQLite URL query parameters are not supported")
    return Path(path)


class SqliteStorage(Storage):
    """Every repository in one SQLite file, shared safely by the threads and processes that open it.

    Each thread lazily opens its own connection (WAL, ``synchronous=NORMAL``, a busy timeout);
    every read-modify-write runs in one ``BEGIN IMMEDIATE`` transaction.
    """

    # In WAL mode readers never wait for writers, and a key lookup takes microseconds.
    reads_in_process = True

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        """Open (creating if needed) the database file and its tables; raises StorageUnavailable."""
        self.path = Path(path)
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[tuple[threading.Thread, int, sqlite3.Connection]] = []
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot create the SQLite database directory: {exc.strerror}") from exc
        self._initialise()
        self.charge_stations = SqliteChargeStationRepository(self)
        self.tokens = SqliteTokenRepository(self)
        self.certificates = SqliteCertificateRepository(self)
        self.registrations = SqliteRegistrationRepository(self)
        self.locations = SqliteLocationRepository(self)
        self.parties = SqlitePartyRepository(self)
        self.pushes = SqlitePushRepository(self)
        self.ocpp = SqliteOcppRepository(self)

    @classmethod
    def from_url(cls, url: str) -> SqliteStorage:
        """Open the database named by a SQLAlchemy-style URL (see ``path_from_url``)."""
        return cls(path_from_url(url))

    def __repr__(self) -> str:
        return f"SqliteStorage({str(self.path)!r})"

    def ping(self) -> None:
        """Run a trivial query on this thread's connection; raises StorageUnavailable."""
        self.fetch_one("SELECT 1", ())

    def close(self) -> None:
        """Close every connection this storage opened, in any thread; later calls raise StorageUnavailable."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        pid = os.getpid()
        for _thread, owner_pid, connection in connections:
            if owner_pid == pid:  # a connection inherited across fork() belongs to the parent
                with contextlib.suppress(sqlite3.Error):
                    connection.close()

    # Plumbing used by the repositories.

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Turn sqlite3 errors that are not the caller's fault into StorageUnavailable."""
        try:
            yield
        except sqlite3.Error as exc:
            if _is_unavailable(exc):
                if _is_read_only(exc):
                    # A connection that opened the file read-only, or whose file was moved, never writes
                    # again; drop it so that this thread's next call opens the file afresh.
                    self._discard_connection()
                raise StorageUnavailable(f"SQLite database unavailable: {exc}") from exc
            raise

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        local = self._local
        connection: sqlite3.Connection | None = getattr(local, "connection", None)
        pid = os.getpid()
        if connection is not None and local.pid == pid and not self._closed:
            return connection
        if self._closed:
            raise StorageUnavailable("SQLite storage is closed")
        connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            connection.close()
            raise
        with self._lock:
            if self._closed:
                connection.close()
                raise StorageUnavailable("SQLite storage is closed")
            self._prune()
            self._connections.append((threading.current_thread(), pid, connection))
        local.connection = connection
        local.pid = pid
        return connection

    def _discard_connection(self) -> None:
        """Close and forget this thread's connection, if any; the next call opens a new one."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None or self._local.pid != os.getpid():  # one inherited across fork() is the parent's
            return
        self._local.connection = None
        with self._lock:
            self._connections = [entry for entry in self._connections if entry[2] is not connection]
        with contextlib.suppress(sqlite3.Error):
            connection.close()

    def _prune(self) -> None:
        """Close the connections of threads that have ended and forget those inherited across fork()."""
        pid = os.getpid()
        alive = []
        for entry in self._connections:
            thread, owner_pid, connection = entry
            if owner_pid != pid:
                continue
            if thread.is_alive():
                alive.append(entry)
            else:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
        self._connections = alive

    def fetch_one(self, sql: str, parameters: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """The first row of a query, run in autocommit."""
        with self.errors():
            row: tuple[Any, ...] | None = self.connection().execute(sql, parameters).fetchone()
            return row

    def fetch_all(self, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Every row of a query, run in autocommit (one statement, so one consistent snapshot)."""
        with self.errors():
            return self.connection().execute(sql, parameters).fetchall()

    def execute(self, sql: str, parameters: tuple[Any, ...]) -> int:
        """Run one writing statement in autocommit (atomic on its own); returns the changed row count."""
        with self.errors():
            return self.connection().execute(sql, parameters).rowcount

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (``BEGIN IMMEDIATE``), committed or rolled back as a whole."""
        with self.errors():
            connection = self.connection()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        connection.execute("ROLLBACK")
                raise

    def _initialise(self) -> None:
        """Switch the file to WAL and create the tables unless this schema version is already there."""
        try:
            with self.errors():
                connection = self.connection()
                if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                    if mode != "wal":
                        log.warning("SQLite database %s stays in journal mode %s, not WAL", self.path, mode)
                if connection.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
                    return
                with self.transaction() as transaction:
                    # Checked again under the write lock: another process may have upgraded meanwhile.
                    version = transaction.execute("PRAGMA user_version").fetchone()[0]
                    if version >= SCHEMA_VERSION:
                        return
                    legacy_tokens = _set_aside_legacy_tokens(transaction)
                    for statement in SCHEMA:
                        transaction.execute(statement)
                    for table, column, type_ in COLUMNS:
                        existing = {row[1] for row in transaction.execute(f"PRAGMA table_info({table})")}
                        if column not in existing:
                            transaction.execute(f"ALTER TABLE {table} ADD COLUMN {column} {type_}")
                    scrub = _upgrade(transaction, legacy_tokens)
                    transaction.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                if scrub:
                    # Clear-text tokens of the older release must not linger in free pages or the WAL.
                    connection.execute("VACUUM")
                    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except BaseException:
            self.close()
            raise

    def station_exists(self, connection: sqlite3.Connection, cs_id: str) -> bool:
        """Whether the charge station was registered (inside the caller's transaction)."""
        return connection.execute("SELECT 1 FROM charge_stations WHERE cs_id = ?", (cs_id,)).fetchone() is not None


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


class SqliteCertificateRepository(CertificateRepository):
    """Client certificates in ``certificates``."""

    def __init__(self, db: SqliteStorage) -> None:
        self._db = db

    def put(self, certificate_hash: str, pem: str) -> None:
        self._db.execute(
            "INSERT INTO certificates (hash, pem) VALUES (?, ?) ON CONFLICT (hash) DO UPDATE SET pem = excluded.pem",
            (certificate_hash, pem),
        )

    def find(self, certificate_hash: str) -> Document | None:
        row = self._db.fetch_one("SELECT hash, pem FROM certificates WHERE hash = ?", (certificate_hash,))
        return None if row is None else {"hash": row[0], "pem": row[1]}

    def remove(self, certificate_hash: str) -> None:
        if self._db.execute("DELETE FROM certificates WHERE hash = ?", (certificate_hash,)) == 0:
            raise NotFound("certificate", certificate_hash)


class SqliteRegistrationRepository(RegistrationRepository):
    """OCPI registrations in ``ocpi_registrations``, by token hash."""

    def __init__(self, db: SqliteStorage) -> None:
        self._db = db

    def put(
        self,
        token_hash: str,
        status: str | None,
        identity: tuple[str, str] | None = None,
        expires_at: datetime | None = None,
    ) -> None:
        country_code, party_id = identity or (None, None)
        expires = None if expires_at is None else _millis(expires_at)
        self._db.execute(
            """INSERT INTO ocpi_registrations (token_hash, status, country_code, party_id, expires_at)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (token_hash) DO UPDATE SET
                   status = COALESCE(?, status),
                   country_code = COALESCE(excluded.country_code, country_code),
                   party_id = COALESCE(excluded.party_id, party_id),
                   expires_at = COALESCE(excluded.expires_at, expires_at)""",
            (token_hash, status or docs.REGISTRATION_PENDING, country_code, party_id, expires, status),
        )

    def find(self, token_hash: str) -> Document | None:
        row = self._db.fetch_one(f"{_REGISTRATION_SELECT} AND token_hash = ?", (_millis(docs.now()), token_hash))
        return None if row is None else _registration(row)

    def remove(self, token_hash: str) -> None:
        self._db.execute("DELETE FROM ocpi_registrations WHERE token_hash = ?", (token_hash,))

    def page(self, offset: int, limit: int) -> list[Document]:
        docs.check_page(offset, limit)
        rows = self._db.fetch_all(
            f"{_REGISTRATION_SELECT} ORDER BY token_hash LIMIT ? OFFSET ?", (_millis(docs.now()), limit, offset)
        )
        return [_registration(row) for row in rows]


#: The registrations that have not expired (NULL ``expires_at``: never), given the time now in milliseconds.
_REGISTRATION_SELECT = """SELECT token_hash, status, country_code, party_id, expires_at FROM ocpi_registrations
    WHERE (expires_at IS NULL OR expires_at > ?)"""


def _registration(row: Sequence[Any]) -> Document:
    found: Document = {"token_hash": row[0], "status": row[1]}
    if row[2] is not None:
        found["country_code"], found["party_id"] = row[2], row[3]
    if row[4] is not None:
        found["expires_at"] = _datetime(row[4])
    return found


_LOCATION_TIMES = docs.LOCATION_TIMES
_PARTY_TIMES = docs.PARTY_TIMES
_dump = docs.dump_document
_load = docs.load_document


def _legacy_load(text: str, times: tuple[tuple[str, ...], ...]) -> Document:
    """A document stored by release 2 as extended JSON: only its timestamps at ``times`` are decoded."""

    def legacy_date(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"$date"}:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                decoded = json_util.loads(json.dumps(value), json_options=_JSON_OPTIONS)
                if isinstance(decoded, datetime):
                    return decoded
        return value

    document: Any = json.loads(text)
    for path in times:
        document = docs.convert_at(document, path, legacy_date)
    result: Document = document
    return result

    def page(self, offset: int, limit: int) -> list[Document]:
        docs.check_page(offset, limit)
        rows = self._db.fetch_all(
            "SELECT token, status FROM registrations ORDER BY token LIMIT ? OFFSET ?", (limit, offset)
        )
        return [{"token": row[0], "status": row[1]} for row in rows]


class SqliteLocationRepository(LocationRepository):
    """Locations in ``locations``: the whole document as plain JSON, plus its sort keys."""

    def __init__(self, db: SqliteStorage) -> None:
        self._db = db

    def put(self, location: Mapping[str, Any]) -> None:
        last_updated = docs.location_last_updated(location)
        self._db.execute(
            """INSERT INTO locations (id, last_updated, document) VALUES (?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET last_updated = excluded.last_updated, document = excluded.document""",
            (
                location["id"],
                None if last_updated is None else _millis(last_updated),
                _dump(location, _LOCATION_TIMES),
            ),
        )

    def find(self, location_id: str) -> Document | None:
        row = self._db.fetch_one("SELECT document FROM locations WHERE id = ?", (location_id,))
        return None if row is None else _load(row[0], _LOCATION_TIMES)

    def page(self, offset: int, limit: int) -> list[Document]:
        docs.check_page(offset, limit)
        rows = self._db.fetch_all(
            "SELECT document FROM locations ORDER BY last_updated, id LIMIT ? OFFSET ?", (limit, offset)
        )
        return [_load(row[0], _LOCATION_TIMES) for row in rows]

    def updated_between(
        self, offset: int, limit: int, date_from: datetime | None = None, date_to: datetime | None = None
    ) -> list[Document]:
        docs.check_page(offset, limit)
        where, parameters = _updated_between(date_from, date_to)
        rows = self._db.fetch_all(
            f"SELECT document FROM locations{where} ORDER BY last_updated, id LIMIT ? OFFSET ?",
            (*parameters, limit, offset),
        )
        return [_load(row[0], _LOCATION_TIMES) for row in rows]

    def count(self, date_from: datetime | None = None, date_to: datetime | None = None) -> int:
        where, parameters = _updated_between(date_from, date_to)
        row = self._db.fetch_one(f"SELECT COUNT(*) FROM locations{where}", parameters)
        return int(row[0]) if row else 0


def _updated_between(date_from: datetime | None, date_to: datetime | None) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause (on the last_updated index) and its parameters for a date window."""
    conditions, parameters = [], []
    if date_from is not None:
        conditions.append("last_updated >= ?")
        parameters.append(_millis(date_from))
    if date_to is not None:
        conditions.append("last_updated < ?")
        parameters.append(_millis(date_to))
    return (f" WHERE {' AND '.join(conditions)}" if conditions else ""), tuple(parameters)


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


def _columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f"PRAGMA table_info({table})").fetchall()]


def _set_aside_legacy_tokens(connection: sqlite3.Connection) -> str | None:
    """Rename a ``tokens`` table of release 2 or earlier (keyed by the uid as sent) out of the way of the new one."""
    columns = _columns(connection, "tokens")
    if not columns or "key" in columns:
        return None
    connection.execute("ALTER TABLE tokens RENAME TO tokens_release_2")
    return "tokens_release_2"


def _upgrade(connection: sqlite3.Connection, legacy_tokens: str | None) -> bool:
    """Bring the data of an older release into schema 3, in the caller's transaction; returns whether clear-text
    tokens were removed (so that the file should be vacuumed).

    Tokens move under their canonical key (of uids differing only in case, the latest update wins; the eMAID
    they were stored with is their ``emaid``). Registrations and parties keep only token hashes; each party
    takes the identities of its roles (one another party already holds is logged and left to it). Locations
    and parties are re-encoded from extended JSON, decoding only their own timestamps.
    """
    scrub = False
    if legacy_tokens is not None:
        old = ("uid", *docs.TOKEN_REQUIRED, "visual_number", "group_id", "language_code")
        connection.execute(
            f"""INSERT INTO tokens (key, {", ".join(old)}, emaid)
                SELECT upper(uid), {", ".join(old)}, contract_id FROM {legacy_tokens} WHERE true
                ORDER BY last_updated, uid
                ON CONFLICT (key) DO UPDATE SET {", ".join(f"{c} = excluded.{c}" for c in (*old, "emaid"))}"""
        )
        connection.execute(f"DROP TABLE {legacy_tokens}")
    if "token" in _columns(connection, "registrations"):
        for token, status in connection.execute("SELECT token, status FROM registrations").fetchall():
            connection.execute(
                "INSERT INTO ocpi_registrations (token_hash, status) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (docs.token_hash_of(token), status or docs.REGISTRATION_PENDING),
            )
        connection.execute("DROP TABLE registrations")
        scrub = True
    for key, text in connection.execute("SELECT key, document FROM ocpi_parties ORDER BY key").fetchall():
        party = _legacy_load(text, _PARTY_TIMES)
        scrub = scrub or "inbound_token" in party
        party.pop("inbound_token", None)
        for identity in docs.party_identities(party):
            held = connection.execute(
                "SELECT party FROM ocpi_party_identities WHERE identity = ?", (identity,)
            ).fetchone()
            if held is None:
                connection.execute("INSERT INTO ocpi_party_identities (identity, party) VALUES (?, ?)", (identity, key))
            elif held[0] != key:
                log.warning("party %s also lists identity %s, which stays with %s", key, identity, held[0])
        connection.execute("UPDATE ocpi_parties SET document = ? WHERE key = ?", (_dump(party, _PARTY_TIMES), key))
    for location_id, text in connection.execute("SELECT id, document FROM locations").fetchall():
        location = _legacy_load(text, _LOCATION_TIMES)
        connection.execute(
            "UPDATE locations SET document = ? WHERE id = ?", (_dump(location, _LOCATION_TIMES), location_id)
        )
    return scrub


_PUSH_COLUMNS = ("id", "party", "location_id", "revision", "attempts", "due_at", "lease_until", "lease", "last_error")
_PUSH_SELECT = f"SELECT {', '.join(_PUSH_COLUMNS)} FROM location_pushes"


def _push(row: tuple[Any, ...]) -> Document:
    """The outbox entry of a ``location_pushes`` row, without the optional keys that are NULL."""
    entry: Document = {c: v for c, v in zip(_PUSH_COLUMNS, row, strict=True) if v is not None}
    entry["due_at"] = _datetime(entry["due_at"])
    entry["lease_until"] = _datetime(entry["lease_until"])
    return entry


class SqlitePushRepository(PushRepository):
    """The location push outbox in ``location_pushes``; claims run in one ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, db: SqliteStorage) -> None:
        self._db = db

    def enqueue(self, party: str, location_id: str, now: datetime) -> None:
        self._db.execute(
            """INSERT INTO location_pushes (id, party, location_id, revision, attempts, due_at, lease_until)
               VALUES (?, ?, ?, ?, 0, ?, 0)
               ON CONFLICT (id) DO UPDATE SET
                   revision = excluded.revision, attempts = 0, due_at = excluded.due_at, last_error = NULL""",
            (push_id(party, location_id), party, location_id, uuid.uuid4().hex, _millis(now)),
        )

    def claim(self, now: datetime, lease_until: datetime, lease: str) -> Document | None:
        at = _millis(now)
        # Every worker polls: look before taking the write lock, which is needed only when there is work.
        if self._db.fetch_one("SELECT 1 FROM location_pushes WHERE due_at <= ? AND lease_until <= ?", (at, at)) is None:
            return None
        with self._db.transaction() as connection:
            row = connection.execute(
                f"{_PUSH_SELECT} WHERE due_at <= ? AND lease_until <= ? ORDER BY due_at, id LIMIT 1", (at, at)
            ).fetchone()
            if row is None:
                return None
            connection.execute(
                "UPDATE location_pushes SET lease_until = ?, lease = ? WHERE id = ?",
                (_millis(lease_until), lease, row[0]),
            )
            row = connection.execute(f"{_PUSH_SELECT} WHERE id = ?", (row[0],)).fetchone()
        return _push(row)

    def complete(self, entry_id: str, lease: str, revision: str) -> bool:
        with self._db.transaction() as connection:
            removed = connection.execute(
                "DELETE FROM location_pushes WHERE id = ? AND lease = ? AND revision = ?", (entry_id, lease, revision)
            ).rowcount
            if not removed:
                connection.execute(
                    "UPDATE location_pushes SET lease_until = 0, lease = NULL WHERE id = ? AND lease = ?",
                    (entry_id, lease),
                )
        return bool(removed)

    def retry(self, entry_id: str, lease: str, revision: str, due_at: datetime, error: str) -> None:
        with self._db.transaction() as connection:
            changed = connection.execute(
                """UPDATE location_pushes SET attempts = attempts + 1, due_at = ?, last_error = ?,
                       lease_until = 0, lease = NULL
                   WHERE id = ? AND lease = ? AND revision = ?""",
                (_millis(due_at), error, entry_id, lease, revision),
            ).rowcount
            if not changed:
                connection.execute(
                    "UPDATE location_pushes SET lease_until = 0, lease = NULL WHERE id = ? AND lease = ?",
                    (entry_id, lease),
                )

    def find(self, entry_id: str) -> Document | None:
        row = self._db.fetch_one(f"{_PUSH_SELECT} WHERE id = ?", (entry_id,))
        return None if row is None else _push(row)

    def all(self) -> list[Document]:
        return [_push(row) for row in self._db.fetch_all(f"{_PUSH_SELECT} ORDER BY due_at, id", ())]

    def remove_party(self, party: str) -> None:
        with self._db.transaction() as connection:
            connection.execute("DELETE FROM location_pushes WHERE party = ?", (party,))
            connection.execute("DELETE FROM location_push_results WHERE party = ?", (party,))

    def waiting_by_party(self) -> dict[str, int]:
        rows = self._db.fetch_all("SELECT party, COUNT(*) FROM location_pushes GROUP BY party", ())
        return {party: int(count) for party, count in rows}

    def record_result(self, result: Mapping[str, Any]) -> None:
        values = {column: result.get(column) for column in _RESULT_COLUMNS[1:]}
        values["at"] = _millis(result["at"])
        if result.get("since") is not None:
            values["since"] = _millis(result["since"])
        row = (push_id(result["party"], result["location_id"]), *values.values())
        self._db.execute(
            f"INSERT OR REPLACE INTO location_push_results ({', '.join(_RESULT_COLUMNS)})"
            f" VALUES ({', '.join('?' * len(_RESULT_COLUMNS))})",
            row,
        )

    def results(self, location_id: str) -> list[Document]:
        rows = self._db.fetch_all(
            f"SELECT {', '.join(_RESULT_COLUMNS[1:])} FROM location_push_results WHERE location_id = ? ORDER BY party",
            (location_id,),
        )
        found = []
        for row in rows:
            result: Document = {c: v for c, v in zip(_RESULT_COLUMNS[1:], row, strict=True) if v is not None}
            result["at"] = _datetime(result["at"])
            if "since" in result:
                result["since"] = _datetime(result["since"])
            found.append(result)
        return found


_RESULT_COLUMNS = (
    "id",
    "party",
    "location_id",
    "revision",
    "state",
    "at",
    "since",
    "attempts",
    "http_status",
    "status_code",
    "status_message",
    "error",
)


def _bump(connection: sqlite3.Connection, cs_id: str, at: int) -> None:
    """Count one more change of the station (inside the caller's transaction), so every worker sees it."""
    connection.execute(
        """INSERT INTO charge_station_runtime (cs_id, seq, changed_at) VALUES (?, 1, ?)
           ON CONFLICT (cs_id) DO UPDATE SET seq = seq + 1, changed_at = excluded.changed_at""",
        (cs_id, at),
    )


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
