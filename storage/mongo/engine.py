"""The MongoDB engine's shared plumbing: the client, error mapping, indexes, encoding and upgrades."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from bson.codec_options import CodecOptions
from bson.datetime_ms import DatetimeMS
from pymongo import ASCENDING, IndexModel, MongoClient
from pymongo.collection import Collection
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DocumentTooLarge,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WriteConcernError,
)

from .. import _documents as docs
from ..base import (
    Document,
    StorageUnavailable,
    TooLarge,
    refuse_newer,
    token_key,
)

log = logging.getLogger(__package__)


DEFAULT_DATABASE = "maeve"


#: Client options used unless the URL sets them: fail fast when the server is down.
CLIENT_DEFAULTS: dict[str, Any] = {
    "serverSelectionTimeoutMS": 2000,
    "connectTimeoutMS": 2000,
    "socketTimeoutMS": 5000,
    "appname": "maeve-api",
}


# Server error codes that mean the request itself is wrong, not that the store is unwell: BadValue,
# FailedToParse, TypeMismatch, DollarPrefixedFieldName, InvalidDBRef, EmptyFieldName, DottedFieldName,
# BSONObjectTooLarge, document too large after an update (17419, 17420), duplicate key (11000, 11001, 12582).
_CALLER_ERROR_CODES = frozenset({2, 9, 14, 52, 55, 56, 57, 10334, 17419, 17420, 11000, 11001, 12582})


#: BSONObjectTooLarge and a document grown too large by an update (17419, 17420).
_TOO_LARGE_CODES = frozenset({10334, 17419, 17420})

_UTC_CODEC: CodecOptions[Document] = CodecOptions(tz_aware=True, tzinfo=docs.UTC)


_TOKEN_KEYS = ("uid", *docs.TOKEN_REQUIRED, *docs.TOKEN_OPTIONAL)


# location.id always equals _id. Sorting and indexing on it rather than on _id sidesteps nx-27017, the
# wire server the tests use, which rejects every write to a collection with a compound index on _id.
_LOCATION_ORDER = [("location.last_updated", ASCENDING), ("location.id", ASCENDING)]


def _is_unavailable(exc: PyMongoError) -> bool:
    """Whether the error comes from the store (unreachable, timed out, failing) rather than from the request."""
    if isinstance(exc, (ConnectionFailure, ExecutionTimeout, WriteConcernError)):
        return True
    if isinstance(exc, BulkWriteError):
        details = exc.details or {}
        if details.get("writeConcernErrors"):
            return True
        codes = {error.get("code") for error in details.get("writeErrors", [])}
        return not codes or not codes <= _CALLER_ERROR_CODES
    if isinstance(exc, OperationFailure):
        return exc.code not in _CALLER_ERROR_CODES
    return True


def _member_key(cs_id: str, member: str) -> str:
    """The ``_id`` of a station's setting or certificate: an unambiguous JSON pair, never a field path.

    A string rather than an embedded ``{cs, name}`` document, because exact matching on embedded
    documents is missing from nx-27017, the wire server the tests run against; on MongoDB both are
    equality matches on the ``_id`` index.
    """
    return json.dumps([cs_id, member], ensure_ascii=False, separators=(",", ":"))


class MongoEngine:
    """The plumbing of one MongoDB database.

    Indexes are created at open; if the server does not answer then, opening still succeeds and the
    next operation tries again.
    """

    def __init__(
        self, client: MongoClient[Document], database: str = DEFAULT_DATABASE, *, owns_client: bool = False
    ) -> None:
        """Use ``database`` through an existing client; ``close()`` closes the client only if it ``owns_client``."""
        self.client = client
        self.owns_client = owns_client
        # Whatever the client's options, timestamps come back tz-aware UTC.
        self.db = client.get_database(database, codec_options=_UTC_CODEC)
        self._indexes_ready = False
        self._indexes_lock = threading.Lock()
        try:
            self._ensure_indexes()
        except PyMongoError as exc:
            if not _is_unavailable(exc):
                raise
            log.warning("MongoDB did not answer at open (%s); indexes will be created on first use", type(exc).__name__)

    def ping(self) -> None:
        """Run the ``ping`` command; raises StorageUnavailable."""
        with self.errors():
            self.db.command("ping")

    def close(self) -> None:
        """Close the client if this storage opened it."""
        if self.owns_client:
            self.client.close()

    # Plumbing used by the repositories.

    def collection(self, name: str) -> Collection[Document]:
        """A collection of this database."""
        return self.db.get_collection(name)

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Turn pymongo errors that are not the caller's fault into StorageUnavailable."""
        try:
            yield
        except DocumentTooLarge as exc:  # refused by pymongo before sending
            raise TooLarge(f"MongoDB document too large ({exc})") from exc
        except PyMongoError as exc:
            if isinstance(exc, OperationFailure) and exc.code in _TOO_LARGE_CODES:
                raise TooLarge(f"MongoDB document too large (code {exc.code})") from exc
            if _is_unavailable(exc):
                detail = (
                    f"{type(exc).__name__}, code {exc.code}"
                    if isinstance(exc, OperationFailure)
                    else type(exc).__name__
                )
                raise StorageUnavailable(f"MongoDB unavailable ({detail})") from exc
            raise

    @contextlib.contextmanager
    def operation(self) -> Iterator[None]:
        """Run a repository operation: indexes first if still missing, errors mapped."""
        with self.errors():
            self._ensure_indexes()
            yield

    def _ensure_indexes(self) -> None:
        """Bring the data to SCHEMA_VERSION and the indexes to INDEXES, once per engine.

        Raises SchemaTooNew, before touching anything, if a newer release wrote the database.
        """
        if self._indexes_ready:
            return
        with self._indexes_lock:
            if self._indexes_ready:
                return
            # A new database has no collection yet (but the version's), so it is not listed again.
            existing = set() if _migrate(self) else set(self.db.list_collection_names())
            for name in dict.fromkeys(name for name, _keys, _options in INDEXES):
                wanted = [(keys, options) for collection, keys, options in INDEXES if collection == name]
                _ensure_indexes(self.collection(name), wanted, exists=name in existing)
            self._indexes_ready = True


#: Every index: (collection, keys, options). Created at open if missing; one on the same keys whose options
#: differ (an older release's) is dropped and created again.
INDEXES: tuple[tuple[str, list[tuple[str, int]], dict[str, Any]], ...] = (
    ("charge_station_settings", [("cs_id", ASCENDING), ("name", ASCENDING)], {}),
    ("charge_station_install_certificates", [("cs_id", ASCENDING), ("certificate_id", ASCENDING)], {}),
    ("locations", _LOCATION_ORDER, {}),
    ("ocpi_parties", [("inbound_token_hash", ASCENDING)], {"unique": True}),
    ("location_pushes", [("due_at", ASCENDING)], {}),
    ("location_pushes", [("party", ASCENDING)], {}),
    ("location_push_results", [("location_id", ASCENDING), ("party", ASCENDING)], {}),
    ("charge_station_runtime", [("changed_at", ASCENDING)], {}),
    ("charge_station_runtime", [("change_seq", ASCENDING)], {}),
    ("tokens", [("emaid", ASCENDING)], {}),
    ("ocpi_party_identities", [("party", ASCENDING)], {}),
)


#: The index options compared with those asked for; absent, false and empty mean the same.
_INDEX_OPTIONS = ("unique", "sparse", "expireAfterSeconds", "partialFilterExpression", "collation")


def _index_options(options: Mapping[str, Any]) -> dict[str, Any]:
    return {name: options[name] for name in _INDEX_OPTIONS if options.get(name) not in (None, False, {})}


def _index_keys(info: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [(field, order if isinstance(order, str) else int(order)) for field, order in info["key"]]


def _ensure_indexes(
    collection: Collection[Document], wanted: list[tuple[list[tuple[str, int]], dict[str, Any]]], *, exists: bool
) -> None:
    """Create, in one command, each index of ``wanted`` unless one on the same keys with the same options exists
    (under any name: servers name them differently); one on the same keys with other options is replaced. A
    collection that does not exist yet has none, and is not asked."""
    present = collection.index_information() if exists else {}
    missing = []
    for keys, options in wanted:
        wanted_options = _index_options(options)
        for name, info in present.items():
            if _index_keys(info) != keys:
                continue
            if _index_options(info) == wanted_options:
                break
            log.warning("replacing index %s of %s: its options changed to %s", name, collection.name, wanted_options)
            with contextlib.suppress(OperationFailure):  # another worker replaced it first
                collection.drop_index(name)
        else:
            missing.append(IndexModel(keys, **options))
    if missing:
        collection.create_indexes(missing)


#: Conditional writes are compare-and-swap on a ``revision`` the store sets on every write; a writer that
#: loses the race reads again, at most this many times.
_CAS_ATTEMPTS = 100


def _token(stored: Document) -> Document:
    """The token document of a stored one (``_id`` is the canonical key; release 2 kept the uid only there)."""
    stored = {"uid": stored["_id"], **stored}
    return {key: stored[key] for key in _TOKEN_KEYS if key in stored}


def _stored_party(party: Mapping[str, Any], identities: list[str]) -> Document:
    return {
        "_id": party["key"],
        "inbound_token_hash": party["inbound_token_hash"],
        "identities": identities,
        "document": docs.dump_document(party, docs.PARTY_TIMES),
    }


#: The schema version this release writes: the last of MIGRATIONS, which bring the data of any earlier
#: version to it at open; kept in ``maeve_schema`` ``{_id: "schema", version}``. A newer one is refused.
SCHEMA_VERSION = 3


#: The version of a database without a version document: new, or written before schema 3, which added it
#: (schemas 1 and 2 only added collections and indexes, which need no migration).
_UNVERSIONED = 2


def _stored_version(db: MongoEngine) -> int:
    found = db.collection("maeve_schema").find_one({"_id": "schema"})
    return _UNVERSIONED if found is None else int(found.get("version", _UNVERSIONED))


def check_version(version: int, database: str) -> int:
    """The version, unless it is newer than this release knows: then raises SchemaTooNew."""
    return refuse_newer(f"the MongoDB database {database!r}", version, SCHEMA_VERSION)


def stored_version(client: MongoClient[Document], database: str) -> int | None:
    """The schema version of the database, read without writing anything; None if the server does not answer
    (opening the database reads it again)."""
    try:
        found = client.get_database(database).get_collection("maeve_schema").find_one({"_id": "schema"})
    except PyMongoError:
        return None
    return _UNVERSIONED if found is None else int(found.get("version", _UNVERSIONED))


def _migrate(db: MongoEngine) -> bool:
    """Run every migration the database has not had, in order, recording each version as it completes; True if
    the database was new (it had no collection), and is now at SCHEMA_VERSION without any step run.

    Without transactions a step can stop midway; every step is idempotent, so the next open (or another
    worker running it at the same time) runs it again from the start and finishes it.
    """
    version = check_version(_stored_version(db), db.db.name)
    if version >= SCHEMA_VERSION:
        return False
    if not db.db.list_collection_names():
        _record_version(db, SCHEMA_VERSION)  # a new database: no step has anything to change
        return True
    for target, migration in MIGRATIONS:
        if version >= target:
            continue
        migration(db)
        _record_version(db, target)
        version = target
        log.info("MongoDB database %s at schema version %d (%s)", db.db.name, target, migration.__name__)
    return False


def _record_version(db: MongoEngine, version: int) -> None:
    # $max: a worker that finishes a step late never lowers the version another has recorded.
    db.collection("maeve_schema").update_one({"_id": "schema"}, {"$max": {"version": version}}, upsert=True)


def _canonical_tokens_hashed_secrets(db: MongoEngine) -> None:
    """2 -> 3: tokens under their canonical key (the latest update wins), registrations and parties with token
    hashes only, each party holding the identities of its roles (one another party holds stays with it) and
    its document stored as JSON text."""
    _canonical_token_keys(db)
    _hashed_registrations(db)
    _parties_as_text_with_identities(db)


def _canonical_token_keys(db: MongoEngine) -> None:
    tokens = db.collection("tokens")
    # Of uids that differ only in case, the latest update wins, then the greatest uid, as on SQLite.
    for uid in sorted(stored["_id"] for stored in tokens.find({}, {"_id": 1})):
        stored = tokens.find_one({"_id": uid})
        if stored is None:
            continue
        token = _token(stored)
        token.setdefault("emaid", token.get("contract_id"))
        key = token_key(token["uid"])
        if key == uid:
            if "uid" not in stored or "emaid" not in stored:
                tokens.update_one({"_id": key}, {"$set": {"uid": token["uid"], "emaid": token["emaid"]}})
            continue
        current = tokens.find_one({"_id": key})
        if current is None or (current["last_updated"], current.get("uid", key)) <= (token["last_updated"], uid):
            tokens.replace_one({"_id": key}, {"_id": key, **docs.token_document(token)}, upsert=True)
        tokens.delete_one({"_id": uid})


def _hashed_registrations(db: MongoEngine) -> None:
    registrations = db.collection("ocpi_registrations")
    for stored in list(db.collection("registrations").find()):
        registrations.update_one(
            {"_id": docs.token_hash_of(stored["_id"])},
            {"$setOnInsert": {"status": stored.get("status") or docs.REGISTRATION_PENDING}},
            upsert=True,
        )
        db.collection("registrations").delete_one({"_id": stored["_id"]})


def _parties_as_text_with_identities(db: MongoEngine) -> None:
    parties = db.collection("ocpi_parties")
    identities = db.collection("ocpi_party_identities")
    for stored in list(parties.find()):
        if "document" in stored:
            continue
        party = {"key": stored["_id"], **{k: v for k, v in stored.items() if k not in ("_id", "inbound_token")}}
        held = []
        for identity in docs.party_identities(party):
            with contextlib.suppress(DuplicateKeyError):
                identities.insert_one({"_id": identity, "party": party["key"], "claimed_at": _millis(docs.now())})
            owner = identities.find_one({"_id": identity})
            if owner is not None and owner["party"] == party["key"]:
                held.append(identity)
            else:
                log.warning("party %s also lists identity %s, which stays with another party", party["key"], identity)
        parties.replace_one({"_id": party["key"]}, _stored_party(party, held))


#: The forward migrations, in order: (the version it brings the database to, the step), each taking the
#: database from the version before. Never change a released step: add one.
MIGRATIONS: tuple[tuple[int, Callable[[MongoEngine], None]], ...] = ((3, _canonical_tokens_hashed_secrets),)


def _millis(value: datetime) -> int:
    return int(DatetimeMS(value))


#: The database server's clock in milliseconds since the epoch. Times that workers of several instances set and
#: compare (outbox due times and leases, a token B's expiry, identity claims) use this one clock, never their own.
_NOW: dict[str, Any] = {"$toLong": "$$NOW"}


def _later(delay: timedelta) -> dict[str, Any]:
    """``delay`` after the server's now, in milliseconds (an aggregation expression)."""
    return {"$add": [_NOW, round(delay.total_seconds() * 1000)]}
