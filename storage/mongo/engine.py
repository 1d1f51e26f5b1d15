"""The MongoDB engine's shared plumbing: the client, error mapping, indexes, encoding and upgrades."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from bson.codec_options import CodecOptions
from bson.datetime_ms import DatetimeMS
from pymongo import ASCENDING, MongoClient
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
        if self._indexes_ready:
            return
        with self._indexes_lock:
            if self._indexes_ready:
                return
            self.collection("charge_station_settings").create_index([("cs_id", ASCENDING), ("name", ASCENDING)])
            self.collection("charge_station_install_certificates").create_index(
                [("cs_id", ASCENDING), ("certificate_id", ASCENDING)]
            )
            self.collection("locations").create_index(_LOCATION_ORDER)
            self.collection("ocpi_parties").create_index("inbound_token_hash", unique=True)
            self.collection("location_pushes").create_index("due_at")
            self.collection("location_pushes").create_index("party")
            self.collection("location_push_results").create_index([("location_id", ASCENDING), ("party", ASCENDING)])
            self.collection("charge_station_runtime").create_index("changed_at")
            self.collection("charge_station_runtime").create_index("change_seq")
            self.collection("tokens").create_index("emaid")
            self.collection("ocpi_party_identities").create_index("party")
            _upgrade(self)
            self._indexes_ready = True


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


#: The schema version of the data, kept in ``maeve_schema``; 3 keys tokens case-insensitively, hashes
#: inbound OCPI tokens and stores party documents as JSON text.
SCHEMA_VERSION = 3


def _upgrade(db: MongoEngine) -> None:
    """Bring the data of an older release to SCHEMA_VERSION; idempotent, so workers may run it at once.

    Tokens move under their canonical key (the latest update wins); registrations and parties keep only token
    hashes; each party takes the identities of its roles (one another party holds already stays with it).
    """
    meta = db.collection("maeve_schema")
    found = meta.find_one({"_id": "schema"})
    if found is not None and found.get("version", 0) >= SCHEMA_VERSION:
        return
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
    registrations = db.collection("ocpi_registrations")
    for stored in list(db.collection("registrations").find()):
        registrations.update_one(
            {"_id": docs.token_hash_of(stored["_id"])},
            {"$setOnInsert": {"status": stored.get("status") or docs.REGISTRATION_PENDING}},
            upsert=True,
        )
        db.collection("registrations").delete_one({"_id": stored["_id"]})
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
    meta.update_one({"_id": "schema"}, {"$set": {"version": SCHEMA_VERSION}}, upsert=True)


def _millis(value: datetime) -> int:
    return int(DatetimeMS(value))
