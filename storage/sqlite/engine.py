"""The SQLite engine's plumbing: connections, transactions, error mapping, encoding, the schema and upgrades."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from bson import json_util
from bson.codec_options import CodecOptions
from bson.datetime_ms import DatetimeMS
from bson.json_util import JSONMode, JSONOptions

from .. import _documents as docs
from ..base import (
    Document,
    StorageUnavailable,
    TooLarge,
    refuse_newer,
)

log = logging.getLogger(__package__)


URL_PREFIX = "sqlite:///"


#: The schema version this release writes: the last of MIGRATIONS (at the end of this module), which take a
#: database from any earlier version to this one at open. A database at a newer version is refused.
SCHEMA_VERSION = 4


# Text keys use the default BINARY collation: UTF-8 byte order, which is code-point order.
# Datetimes are INTEGER milliseconds since the epoch (UTC), exactly what BSON stores.
# Each migration's statements are kept as that version wrote them: a later change is a new migration.

#: Schema 1: stations, their staged settings, certificates and trigger, tokens keyed by the uid as sent,
#: client certificates, OCPI registrations keyed by their clear-text token, and locations.
SCHEMA_1 = (
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
        uid TEXT PRIMARY KEY NOT NULL,
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
        language_code TEXT
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS certificates (
        hash TEXT PRIMARY KEY NOT NULL,
        pem TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS registrations (
        token TEXT PRIMARY KEY NOT NULL,
        status TEXT
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS locations (
        id TEXT PRIMARY KEY NOT NULL,
        last_updated INTEGER,
        document TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS locations_by_last_updated ON locations (last_updated, id)",
)


#: Schema 2 added the OCPI parties and the outbox of location pushes.
SCHEMA_2 = (
    """CREATE TABLE IF NOT EXISTS ocpi_parties (
        key TEXT PRIMARY KEY NOT NULL,
        inbound_token_hash TEXT NOT NULL UNIQUE,
        document TEXT NOT NULL
    )""",
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
)


#: Schema 3 keys tokens case-insensitively, keeps OCPI registration tokens only as hashes, gives each party
#: the identities of its roles, keeps push results, and adds the OCPP runtime and counters (with COLUMNS).
SCHEMA_3 = (
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
    """CREATE TABLE IF NOT EXISTS ocpi_registrations (
        token_hash TEXT PRIMARY KEY NOT NULL,
        status TEXT NOT NULL,
        country_code TEXT,
        party_id TEXT,
        expires_at INTEGER
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS ocpi_party_identities (
        identity TEXT PRIMARY KEY NOT NULL,
        party TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS ocpi_party_identities_by_party ON ocpi_party_identities (party)",
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


#: Columns schema 3 added to tables of schema 1 (ALTER TABLE has no IF NOT EXISTS: each is added if missing).
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
_SQLITE_TOOBIG = 18


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


def check_version(version: int, path: Path) -> int:
    """The version, unless it is newer than this release knows: then raises SchemaTooNew."""
    return refuse_newer(f"the SQLite database {path}", version, SCHEMA_VERSION)


def stored_version(path: Path) -> int | None:
    """The schema version of the database file, read without writing anything; None if there is no such file
    or it cannot be read now (opening it reads it again)."""
    if not path.is_file():
        return None
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return None
    try:
        version: int = connection.execute("PRAGMA user_version").fetchone()[0]
        return version
    except sqlite3.Error:
        return None
    finally:
        connection.close()


class SqliteEngine:
    """The plumbing of one SQLite file, shared safely by the threads and processes that open it.

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
            if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == _SQLITE_TOOBIG:
                raise TooLarge(f"SQLite row too large: {exc}") from exc
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
        """Switch the file to WAL and bring its schema to SCHEMA_VERSION, one migration per transaction.

        Raises SchemaTooNew, and changes nothing, if a newer release wrote the file.
        """
        try:
            with self.errors():
                connection = self.connection()
                # Checked first: a file of a newer release is left exactly as it is, its journal mode included.
                version = check_version(connection.execute("PRAGMA user_version").fetchone()[0], self.path)
                mode = self._switch_to_wal(connection)
                if mode != "wal":
                    log.warning("SQLite database %s stays in journal mode %s, not WAL", self.path, mode)
                if version < SCHEMA_VERSION:
                    self._migrate(connection)
        except BaseException:
            self.close()
            raise

    def _switch_to_wal(self, connection: sqlite3.Connection) -> str:
        """Switch the file to WAL unless it is already; returns the journal mode it ends in.

        The switch needs the file to itself and SQLite does not wait for that (no busy handler): while another
        worker opening the same new file holds it (switching, or migrating once switched), it is retried for up
        to the store's timeout, and ends as soon as that worker has switched it.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            mode: str = connection.execute("PRAGMA journal_mode").fetchone()[0]
            if mode == "wal":
                return mode
            try:
                switched: str = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                return switched
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
            time.sleep(0.01)

    def _migrate(self, connection: sqlite3.Connection) -> None:
        """Run every migration the file has not had, in order, each with its version in its own transaction.

        A crash or an error leaves the file at the last version committed, where the next open carries on;
        another process opening the file meanwhile finds each step done under the write lock and skips it.
        """
        secure_delete = connection.execute("PRAGMA secure_delete").fetchone()[0]
        # Deleted rows (clear-text tokens among them) are overwritten, not only unlinked, even before VACUUM.
        connection.execute("PRAGMA secure_delete = ON")
        vacuum = False
        # A new file runs every step too: said at debug level only, since it is not an upgrade.
        level = logging.INFO if connection.execute("PRAGMA user_version").fetchone()[0] else logging.DEBUG
        try:
            for version, migration in MIGRATIONS:
                with self.transaction() as transaction:
                    if check_version(transaction.execute("PRAGMA user_version").fetchone()[0], self.path) >= version:
                        continue
                    vacuum = migration(transaction) or vacuum
                    transaction.execute(f"PRAGMA user_version = {version}")
                log.log(level, "SQLite database %s at schema version %d (%s)", self.path, version, migration.__name__)
        finally:
            connection.execute(f"PRAGMA secure_delete = {int(secure_delete)}")
        if vacuum:
            # The clear-text tokens of the older release must not linger in free pages or the WAL.
            connection.execute("VACUUM")
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def station_exists(self, connection: sqlite3.Connection, cs_id: str) -> bool:
        """Whether the charge station was registered (inside the caller's transaction)."""
        return connection.execute("SELECT 1 FROM charge_stations WHERE cs_id = ?", (cs_id,)).fetchone() is not None


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


def _columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f"PRAGMA table_info({table})").fetchall()]


def _create_schema_1(connection: sqlite3.Connection) -> bool:
    """0 -> 1: the first release's tables."""
    for statement in SCHEMA_1:
        connection.execute(statement)
    return False


def _add_ocpi_parties_and_pushes(connection: sqlite3.Connection) -> bool:
    """1 -> 2: the OCPI parties and the outbox of location pushes."""
    for statement in SCHEMA_2:
        connection.execute(statement)
    return False


def _canonical_tokens_hashed_secrets_and_ocpp(connection: sqlite3.Connection) -> bool:
    """2 -> 3: tokens under their canonical key, registrations and parties with token hashes only, documents as
    plain JSON, party identities, push results and the OCPP runtime; returns whether clear-text tokens were
    removed (so that the file should be vacuumed).
    """
    legacy_tokens = _set_aside_legacy_tokens(connection)
    for statement in SCHEMA_3:
        connection.execute(statement)
    for table, column, type_ in COLUMNS:
        if column not in _columns(connection, table):
            connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {type_}")
    return _upgrade(connection, legacy_tokens)


def _number_changes(connection: sqlite3.Connection) -> bool:
    """3 -> 4: each station's latest change numbered from one store-wide sequence, for the OCPP endpoint's
    change poll; stations changed before it have no number and count as seen."""
    if "change_seq" not in _columns(connection, "charge_station_runtime"):
        connection.execute("ALTER TABLE charge_station_runtime ADD COLUMN change_seq INTEGER")
    connection.execute(
        "CREATE INDEX IF NOT EXISTS charge_station_runtime_by_change_seq ON charge_station_runtime (change_seq)"
    )
    return False


#: The forward migrations, in order: (the version it brings the database to, the step), each taking the
#: database from the version before. A new database runs them all. Never change a released step: add one.
MIGRATIONS: tuple[tuple[int, Callable[[sqlite3.Connection], bool]], ...] = (
    (1, _create_schema_1),
    (2, _add_ocpi_parties_and_pushes),
    (3, _canonical_tokens_hashed_secrets_and_ocpp),
    (4, _number_changes),
)


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
        registrations = connection.execute("SELECT token, status FROM registrations").fetchall()
        for token, status in registrations:
            connection.execute(
                "INSERT INTO ocpi_registrations (token_hash, status) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (docs.token_hash_of(token), status or docs.REGISTRATION_PENDING),
            )
        connection.execute("DROP TABLE registrations")
        scrub = bool(registrations)
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
