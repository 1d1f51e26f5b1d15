"""The MongoDB engine: pymongo with natural-key ``_id``s, single-document atomic updates and no transactions."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bson.codec_options import CodecOptions
from bson.datetime_ms import DatetimeMS
from pymongo import ASCENDING, MongoClient, ReturnDocument, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WriteConcernError,
)

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
    "MongoCertificateRepository",
    "MongoChargeStationRepository",
    "MongoLocationRepository",
    "MongoOcppRepository",
    "MongoPartyRepository",
    "MongoPushRepository",
    "MongoRegistrationRepository",
    "MongoStorage",
    "MongoTokenRepository",
]

log = logging.getLogger(__name__)

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

_UTC_CODEC: CodecOptions[Document] = CodecOptions(tz_aware=True, tzinfo=docs.UTC)

_TOKEN_KEYS = ("uid", *docs.TOKEN_REQUIRED, *docs.TOKEN_OPTIONAL)
# location.id always equals _id. Sorting and indexing on it rather than on _id sidesteps nx-27017, the
# wire server the tests use, which rejects every write to a collection with a compound index on _id.
_LOCATION_ORDER = [("location.last_updated", ASCENDING), ("location.id", ASCENDING)]
_AUTH_PROJECTION = {"_id": 0, "security_profile": 1, "password_hash": 1, "invalid_username_allowed": 1}


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


class MongoStorage(Storage):
    """Every repository in one MongoDB database.

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
        self.charge_stations = MongoChargeStationRepository(self)
        self.tokens = MongoTokenRepository(self)
        self.certificates = MongoCertificateRepository(self)
        self.registrations = MongoRegistrationRepository(self)
        self.locations = MongoLocationRepository(self)
        self.parties = MongoPartyRepository(self)
        self.pushes = MongoPushRepository(self)
        self.ocpp = MongoOcppRepository(self)
        try:
            self._ensure_indexes()
        except PyMongoError as exc:
            if not _is_unavailable(exc):
                raise
            log.warning("MongoDB did not answer at open (%s); indexes will be created on first use", type(exc).__name__)

    @classmethod
    def from_url(cls, url: str) -> MongoStorage:
        """Open a client for ``mongodb://`` or ``mongodb+srv://`` URLs; the database is the URL path or ``maeve``.

        Options in the URL take precedence over CLIENT_DEFAULTS. Does not wait for the server.
        """
        given = {name.lower() for name, _ in parse_qsl(urlsplit(url).query)}
        options = {name: value for name, value in CLIENT_DEFAULTS.items() if name.lower() not in given}
        client: MongoClient[Document] = MongoClient(url, tz_aware=True, tzinfo=docs.UTC, **options)
        try:
            return cls(client, client.get_default_database(DEFAULT_DATABASE).name, owns_client=True)
        except BaseException:
            client.close()
            raise

    def __repr__(self) -> str:
        return f"MongoStorage(database={self.db.name!r})"

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
        except PyMongoError as exc:
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
            self.collection("tokens").create_index("emaid")
            self.collection("ocpi_party_identities").create_index("party")
            _upgrade(self)
            self._indexes_ready = True


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


#: Conditional writes are compare-and-swap on a ``revision`` the store sets on every write; a writer that
#: loses the race reads again, at most this many times.
_CAS_ATTEMPTS = 100


def _token(stored: Document) -> Document:
    """The token document of a stored one (``_id`` is the canonical key; release 2 kept the uid only there)."""
    stored = {"uid": stored["_id"], **stored}
    return {key: stored[key] for key in _TOKEN_KEYS if key in stored}


def _stored_token(token: Mapping[str, Any]) -> Document:
    document = docs.token_document(token)
    return {"_id": token_key(document["uid"]), **document, "revision": uuid.uuid4().hex}


class MongoTokenRepository(TokenRepository):
    """Tokens in ``tokens``, ``_id`` = the upper-case uid; conditional writes are compare-and-swap on ``revision``."""

    def __init__(self, db: MongoStorage) -> None:
        self._db = db
        self._tokens = db.collection("tokens")

    def put(self, token: Mapping[str, Any]) -> None:
        document = _stored_token(token)
        with self._db.operation():
            self._tokens.replace_one({"_id": document["_id"]}, document, upsert=True)

    def _swap(self, key: str, change: Any) -> tuple[Document | None, Document]:
        """Write ``change(stored or None)`` (a stored document) only over what it was computed from; retries."""
        with self._db.operation():
            for _ in range(_CAS_ATTEMPTS):
                stored = self._tokens.find_one({"_id": key})
                replacement = change(None if stored is None else _token(stored))
                if stored is None:
                    try:
                        self._tokens.insert_one(replacement)
                    except DuplicateKeyError:
                        continue
                    return None, replacement
                # A token of release 2 has no revision: None matches only while the field is still missing.
                current = {"_id": key, "revision": stored.get("revision")}
                if self._tokens.replace_one(current, replacement).matched_count:
                    return _token(stored), replacement
        raise StorageUnavailable(f"token {key!r} is being written by too many writers at once")

    def put_owned(self, token: Mapping[str, Any]) -> bool:
        def change(stored: Document | None) -> Document:
            docs.check_owned(stored, token)
            return _stored_token(token)

        before, _ = self._swap(token_key(token["uid"]), change)
        return before is None

    def patch(self, uid: str, owner: tuple[str, str], token_type: str, changes: Mapping[str, Any]) -> Document:
        def change(stored: Document | None) -> Document:
            if stored is None or not docs.owns(stored, owner, token_type):
                raise NotFound("token", uid)
            return _stored_token(docs.patched_token(stored, changes))

        _, written = self._swap(token_key(uid), change)
        return _token(written)

    def find(self, uid: str) -> Document | None:
        with self._db.operation():
            stored = self._tokens.find_one({"_id": token_key(uid)})
        return None if stored is None else _token(stored)

    def find_by_contract_id(self, emaid: str) -> Document | None:
        with self._db.operation():
            found = list(self._tokens.find({"emaid": emaid}).sort([("_id", ASCENDING)]).limit(1))
        return _token(found[0]) if found else None

    def page(self, offset: int, limit: int) -> list[Document]:
        docs.check_page(offset, limit)
        if limit == 0:  # Mongo reads limit(0) as "no limit"
            return []
        with self._db.operation():
            found = list(self._tokens.find().sort([("_id", ASCENDING)]).skip(offset).limit(limit))
        return [_token(stored) for stored in found]


class MongoCertificateRepository(CertificateRepository):
    """Client certificates in ``certificates``, ``_id`` = hash."""

    def __init__(self, db: MongoStorage) -> None:
        self._db = db
        self._certificates = db.collection("certificates")

    def put(self, certificate_hash: str, pem: str) -> None:
        with self._db.operation():
            self._certificates.replace_one(
                {"_id": certificate_hash}, {"_id": certificate_hash, "pem": pem}, upsert=True
            )

    def find(self, certificate_hash: str) -> Document | None:
        with self._db.operation():
            stored = self._certificates.find_one({"_id": certificate_hash})
        return None if stored is None else {"hash": stored["_id"], "pem": stored["pem"]}

    def remove(self, certificate_hash: str) -> None:
        with self._db.operation():
            result = self._certificates.delete_one({"_id": certificate_hash})
        if result.deleted_count == 0:
            raise NotFound("certificate", certificate_hash)


class MongoRegistrationRepository(RegistrationRepository):
    """OCPI registrations in ``ocpi_registrations``, ``_id`` = token hash, ``expires_at`` in milliseconds."""

    def __init__(self, db: MongoStorage) -> None:
        self._db = db
        self._registrations = db.collection("ocpi_registrations")

    def put(
        self,
        token_hash: str,
        status: str | None,
        identity: tuple[str, str] | None = None,
        expires_at: datetime | None = None,
    ) -> None:
        # One atomic upsert either way: $setOnInsert never touches an existing registration.
        changes: Document = {}
        if status is not None:
            changes["status"] = status
        if identity is not None:
            changes["country_code"], changes["party_id"] = identity
        if expires_at is not None:
            changes["expires_at"] = _millis(expires_at)
        update: Document = {"$set": changes} if changes else {}
        if status is None:
            update["$setOnInsert"] = {"status": docs.REGISTRATION_PENDING}
        with self._db.operation():
            self._registrations.update_one({"_id": token_hash}, update, upsert=True)

    def find(self, token_hash: str) -> Document | None:
        with self._db.operation():
            stored = self._registrations.find_one({"_id": token_hash, **_unexpired()})
        return None if stored is None else _registration(stored)

    def remove(self, token_hash: str) -> None:
        with self._db.operation():
            self._registrations.delete_one({"_id": token_hash})

    def page(self, offset: int, limit: int) -> list[Document]:
        docs.check_page(offset, limit)
        if limit == 0:  # Mongo reads limit(0) as "no limit"
            return []
        with self._db.operation():
            found = list(
                self._registrations.find(_unexpired()).sort([("_id", ASCENDING)]).skip(offset).limit(limit)
            )
        return [_registration(stored) for stored in found]


def _unexpired() -> Document:
    """The filter of registrations that have not expired (absent ``expires_at``: never)."""
    return {"$or": [{"expires_at": None}, {"expires_at": {"$gt": _millis(docs.now())}}]}


def _registration(stored: Mapping[str, Any]) -> Document:
    found: Document = {"token_hash": stored["_id"], "status": stored["status"]}
    if stored.get("country_code") is not None:
        found["country_code"], found["party_id"] = stored["country_code"], stored["party_id"]
    if stored.get("expires_at") is not None:
        found["expires_at"] = DatetimeMS(stored["expires_at"]).as_datetime(_UTC_CODEC)
    return found


class MongoLocationRepository(LocationRepository):
    """Locations in ``locations``: ``{_id: id, location: <the whole document>}``.

    The document is nested so that none of its keys can clash with ``_id`` or be read as an operator.
    """

    def __init__(self, db: MongoStorage) -> None:
        self._db = db
        self._locations = db.collection("locations")

    def put(self, location: Mapping[str, Any]) -> None:
        docs.location_last_updated(location)
        # Refuses what SQLite refuses (a datetime anywhere but at LOCATION_TIMES), so both engines agree.
        docs.dump_document(location, docs.LOCATION_TIMES)
        location_id = location["id"]
        with self._db.operation():
            self._locations.replace_one(
                {"_id": location_id}, {"_id": location_id, "location": dict(location)}, upsert=True
            )

    def find(self, location_id: str) -> Document | None:
        with self._db.operation():
            stored = self._locations.find_one({"_id": location_id})
        return None if stored is None else dict(stored["location"])

    def page(self, offset: int, limit: int) -> list[Document]:
        docs.check_page(offset, limit)
        if limit == 0:  # Mongo reads limit(0) as "no limit"
            return []
        with self._db.operation():
            found = list(self._locations.find().sort(_LOCATION_ORDER).skip(offset).limit(limit))
        return [dict(stored["location"]) for stored in found]

    def updated_between(
        self, offset: int, limit: int, date_from: datetime | None = None, date_to: datetime | None = None
    ) -> list[Document]:
        docs.check_page(offset, limit)
        if limit == 0:
            return []
        with self._db.operation():
            found = list(
                self._locations.find(_updated_between(date_from, date_to))
                .sort(_LOCATION_ORDER)
                .skip(offset)
                .limit(limit)
            )
        return [dict(stored["location"]) for stored in found]

    def count(self, date_from: datetime | None = None, date_to: datetime | None = None) -> int:
        with self._db.operation():
            return int(self._locations.count_documents(_updated_between(date_from, date_to)))


def _updated_between(date_from: datetime | None, date_to: datetime | None) -> Document:
    """The filter on ``location.last_updated`` (indexed) for a date window."""
    bounds: Document = {}
    if date_from is not None:
        bounds["$gte"] = date_from
    if date_to is not None:
        bounds["$lt"] = date_to
    return {"location.last_updated": bounds} if bounds else {}


#: An identity claim whose party document is missing this long after the claim was made (a writer that died
#: between the two writes) is free again.
_STALE_CLAIM_MS = 60_000


class MongoPartyRepository(PartyRepository):
    """OCPI parties in ``ocpi_parties``: ``{_id: key, inbound_token_hash (unique), identities, document}``,
    the document as plain JSON text (so that no key of a partner's is read as BSON's ``$ref`` or an operator);
    each identity held is one ``ocpi_party_identities`` entry ``{_id: identity, party}``, unique by ``_id``."""

    def __init__(self, db: MongoStorage) -> None:
        self._db = db
        self._parties = db.collection("ocpi_parties")
        self._identities = db.collection("ocpi_party_identities")

    def _claim(self, key: str, identities: list[str]) -> list[str]:
        """Take each identity for ``key``; returns those newly taken. Raises Conflict (releasing them) if one is
        held by another party."""
        taken: list[str] = []
        for identity in identities:
            for _ in range(_CAS_ATTEMPTS):
                try:
                    self._identities.insert_one({"_id": identity, "party": key, "claimed_at": _millis(docs.now())})
                    taken.append(identity)
                    break
                except DuplicateKeyError:
                    held = self._identities.find_one({"_id": identity})
                    if held is None:
                        continue
                    if held["party"] == key:
                        break
                    holder = self._parties.find_one({"_id": held["party"]}, {"identities": 1})
                    stale = held.get("claimed_at", 0) < _millis(docs.now()) - _STALE_CLAIM_MS
                    if (holder is None and stale) or (holder is not None and identity not in holder["identities"]):
                        self._identities.delete_one({"_id": identity, "party": held["party"]})
                        continue
                    self._release(key, taken)
                    raise Conflict("party identity", identity, "is held by another party") from None
        return taken

    def _release(self, key: str, identities: list[str]) -> None:
        for identity in identities:
            self._identities.delete_one({"_id": identity, "party": key})

    def create(self, party: Mapping[str, Any]) -> None:
        identities = docs.party_identities(party)
        with self._db.operation():
            if self._parties.find_one({"_id": party["key"]}, {"_id": 1}) is not None:
                raise Conflict("party", party["key"], "is registered already")
            taken = self._claim(party["key"], identities)
            try:
                self._parties.insert_one(_stored_party(party, identities))
            except DuplicateKeyError:
                self._release(party["key"], taken)
                raise Conflict("party", party["key"], "is registered already") from None

    def update(self, key: str, inbound_token_hash: str, party: Mapping[str, Any]) -> None:
        identities = docs.party_identities(party)
        with self._db.operation():
            if self._parties.find_one({"_id": key, "inbound_token_hash": inbound_token_hash}, {"_id": 1}) is None:
                raise NotFound("party", key)
            taken = self._claim(key, identities)
            replaced = self._parties.replace_one(
                {"_id": key, "inbound_token_hash": inbound_token_hash}, _stored_party({**party, "key": key}, identities)
            )
            if not replaced.matched_count:
                self._release(key, taken)
                raise NotFound("party", key)
            for held in self._identities.find({"party": key}):
                if held["_id"] not in identities:
                    self._identities.delete_one({"_id": held["_id"], "party": key})

    def find(self, key: str) -> Document | None:
        with self._db.operation():
            stored = self._parties.find_one({"_id": key})
        return None if stored is None else _party(stored)

    def find_by_inbound_token_hash(self, token_hash: str) -> Document | None:
        with self._db.operation():
            stored = self._parties.find_one({"inbound_token_hash": token_hash})
        return None if stored is None else _party(stored)

    def find_by_identity(self, country_code: str, party_id: str) -> Document | None:
        identity = party_identity(country_code, party_id)
        with self._db.operation():
            held = self._identities.find_one({"_id": identity})
            stored = None if held is None else self._parties.find_one({"_id": held["party"]})
        return None if stored is None or identity not in stored["identities"] else _party(stored)

    def all(self) -> list[Document]:
        with self._db.operation():
            found = list(self._parties.find().sort([("_id", ASCENDING)]))
        return [_party(stored) for stored in found]

    def remove(self, key: str) -> None:
        with self._db.operation():
            self._parties.delete_one({"_id": key})
            self._identities.delete_many({"party": key})

    def record_push(self, key: str, result: Mapping[str, Any]) -> None:
        # Compare-and-swap on the document text, so that a re-registration or another result in between wins.
        with self._db.operation():
            for _ in range(_CAS_ATTEMPTS):
                stored = self._parties.find_one({"_id": key})
                if stored is None:
                    return
                party = {**_party(stored), "last_push": dict(result)}
                text = docs.dump_document(party, docs.PARTY_TIMES)
                if self._parties.update_one(
                    {"_id": key, "document": stored["document"]}, {"$set": {"document": text}}
                ).matched_count:
                    return


def _stored_party(party: Mapping[str, Any], identities: list[str]) -> Document:
    return {
        "_id": party["key"],
        "inbound_token_hash": party["inbound_token_hash"],
        "identities": identities,
        "document": docs.dump_document(party, docs.PARTY_TIMES),
    }


def _party(stored: Document) -> Document:
    """The party document of a stored one."""
    party = docs.load_document(stored["document"], docs.PARTY_TIMES)
    party["key"] = stored["_id"]
    return party


#: The schema version of the data, kept in ``maeve_schema``; 3 keys tokens case-insensitively, hashes
#: inbound OCPI tokens and stores party documents as JSON text.
SCHEMA_VERSION = 3


def _upgrade(db: MongoStorage) -> None:
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


# Outbox times are integer milliseconds since the epoch: nx-27017, the wire server the tests use,
# stores a datetime given to $set on an existing document as a string, which then compares wrongly.
_FREE = 0
_RELEASE: Document = {"$set": {"lease_until": _FREE}, "$unset": {"lease": ""}}


def _millis(value: datetime) -> int:
    return int(DatetimeMS(value))


def _push(stored: Document) -> Document:
    """The outbox entry of a stored one (``_id`` is the id, times in milliseconds)."""
    entry = {k: v for k, v in stored.items() if k != "_id"}
    entry["due_at"] = DatetimeMS(entry["due_at"]).as_datetime(_UTC_CODEC)
    entry["lease_until"] = DatetimeMS(entry["lease_until"]).as_datetime(_UTC_CODEC)
    return {"id": stored["_id"], **entry}


class MongoPushRepository(PushRepository):
    """The location push outbox in ``location_pushes``, ``_id`` = entry id; claims are one find_one_and_update."""

    def __init__(self, db: MongoStorage) -> None:
        self._db = db
        self._pushes = db.collection("location_pushes")
        self._results = db.collection("location_push_results")

    def enqueue(self, party: str, location_id: str, now: datetime) -> None:
        update: Document = {
            "$set": {
                "party": party,
                "location_id": location_id,
                "revision": uuid.uuid4().hex,
                "attempts": 0,
                "due_at": _millis(now),
            },
            "$unset": {"last_error": ""},
            "$setOnInsert": {"lease_until": _FREE},
        }
        with self._db.operation():
            self._pushes.update_one({"_id": push_id(party, location_id)}, update, upsert=True)

    def claim(self, now: datetime, lease_until: datetime, lease: str) -> Document | None:
        with self._db.operation():
            stored = self._pushes.find_one_and_update(
                {"due_at": {"$lte": _millis(now)}, "lease_until": {"$lte": _millis(now)}},
                {"$set": {"lease_until": _millis(lease_until), "lease": lease}},
                sort=[("due_at", ASCENDING), ("_id", ASCENDING)],
                return_document=ReturnDocument.AFTER,
            )
        return None if stored is None else _push(stored)

    def complete(self, entry_id: str, lease: str, revision: str) -> bool:
        with self._db.operation():
            removed = self._pushes.delete_one({"_id": entry_id, "lease": lease, "revision": revision}).deleted_count
            if not removed:
                self._pushes.update_one({"_id": entry_id, "lease": lease}, _RELEASE)
        return bool(removed)

    def retry(self, entry_id: str, lease: str, revision: str, due_at: datetime, error: str) -> None:
        update: Document = {
            "$set": {"due_at": _millis(due_at), "last_error": error, "lease_until": _FREE},
            "$inc": {"attempts": 1},
            "$unset": {"lease": ""},
        }
        with self._db.operation():
            result = self._pushes.update_one({"_id": entry_id, "lease": lease, "revision": revision}, update)
            if not result.matched_count:
                self._pushes.update_one({"_id": entry_id, "lease": lease}, _RELEASE)

    def find(self, entry_id: str) -> Document | None:
        with self._db.operation():
            stored = self._pushes.find_one({"_id": entry_id})
        return None if stored is None else _push(stored)

    def all(self) -> list[Document]:
        with self._db.operation():
            found = list(self._pushes.find().sort([("due_at", ASCENDING), ("_id", ASCENDING)]))
        return [_push(stored) for stored in found]

    def remove_party(self, party: str) -> None:
        with self._db.operation():
            self._pushes.delete_many({"party": party})
            self._results.delete_many({"party": party})

    def waiting_by_party(self) -> dict[str, int]:
        with self._db.operation():
            groups = list(self._pushes.aggregate([{"$group": {"_id": "$party", "count": {"$sum": 1}}}]))
        return {group["_id"]: int(group["count"]) for group in groups}

    def record_result(self, result: Mapping[str, Any]) -> None:
        document: Document = {k: result[k] for k in _RESULT_KEYS if result.get(k) is not None}
        document["at"] = _millis(result["at"])
        if "since" in document:
            document["since"] = _millis(document["since"])
        key = push_id(result["party"], result["location_id"])
        with self._db.operation():
            self._results.replace_one({"_id": key}, {"_id": key, **document}, upsert=True)

    def results(self, location_id: str) -> list[Document]:
        with self._db.operation():
            found = list(self._results.find({"location_id": location_id}).sort([("party", ASCENDING)]))
        results = []
        for stored in found:
            result = {k: v for k, v in stored.items() if k != "_id"}
            result["at"] = DatetimeMS(result["at"]).as_datetime(_UTC_CODEC)
            if "since" in result:
                result["since"] = DatetimeMS(result["since"]).as_datetime(_UTC_CODEC)
            results.append(result)
        return results


_RESULT_KEYS = (
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


def _staged() -> Document:
    """The delivery fields of an item staged now: a new revision, never attempted, due at once."""
    return {"revision": uuid.uuid4().hex, "attempts": 0, "due_at": 0, "updated_at": _millis(docs.now())}


def _bump(db: MongoStorage, cs_id: str, at: int) -> None:
    """Count one more change of the station, after the change itself is written, so every worker sees it."""
    db.collection("charge_station_runtime").update_one(
        {"_id": cs_id}, {"$inc": {"seq": 1}, "$set": {"changed_at": at}}, upsert=True
    )


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
