"""The repository interface every storage engine implements, and the errors it raises.

Documents crossing this interface are plain dicts with snake_case keys. Timestamps are
timezone-aware UTC ``datetime`` objects (millisecond precision, as BSON stores them).
An optional field that is not set is absent from the dict, never ``None``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

Document = dict[str, Any]


class StorageError(Exception):
    """Base of the errors raised by a storage engine."""


class NotFound(StorageError):
    """The record, or the charge station it belongs to, does not exist."""

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} not found")
        self.kind = kind
        self.key = key


class StorageUnavailable(StorageError):
    """The store did not answer in time or refused the operation for reasons not of the caller's making."""


class TooLarge(StorageError):
    """The record would be larger than the store keeps in one document (MongoDB's 16 MB); nothing was written."""


class Conflict(StorageError):
    """A conditional write found the record held by someone else or in another state; nothing was written.

    ``kind`` is the kind of record (``token``, ``party identity``), ``key`` the key asked for and ``reason``
    what the stored record holds instead.
    """

    def __init__(self, kind: str, key: str, reason: str) -> None:
        super().__init__(f"{kind} {key!r} {reason}")
        self.kind = kind
        self.key = key
        self.reason = reason


class SchemaTooNew(StorageUnavailable):
    """The store was written by a newer release, at a schema version this one does not know; nothing was changed.

    Refused rather than read or downgraded: this release could misread, or undo, what the newer one wrote.
    """


def refuse_newer(store: str, version: int, known: int) -> int:
    """``version``, unless it is newer than ``known``, this release's: then raises SchemaTooNew naming ``store``."""
    if version > known:
        raise SchemaTooNew(
            f"{store} is at schema version {version}, newer than this release's {known}: it was written by a newer"
            " release; run that one, or restore the backup taken before the upgrade"
        )
    return version


class ChargeStationRepository(ABC):
    """Charge stations: auth record, settings, certificates to install and trigger message.

    Auth document: ``{"security_profile": int, "password_hash"?: str,
    "invalid_username_allowed": bool}``; stored alongside ``provisioning: "Pending"``
    and ``updated_at``.
    Setting: ``{"name", "value", "status"}``. Install certificate: ``{"certificate_id",
    "type", "pem", "status"}``. Trigger: ``{"message", "status"}``.
    Writes to settings, certificates and trigger raise ``NotFound("charge station", cs_id)``
    when the station was never registered; stations are never deleted.
    """

    @abstractmethod
    def put_auth(self, cs_id: str, auth: Mapping[str, Any]) -> None:
        """Create or replace the whole auth record and reset provisioning to Pending."""

    @abstractmethod
    def find_auth(self, cs_id: str) -> Document | None:
        """The auth document (only the three auth keys), or None."""

    @abstractmethod
    def merge_settings(self, cs_id: str, settings: Iterable[Mapping[str, str]]) -> None:
        """Upsert each setting by name (value and status replaced), keeping the others."""

    @abstractmethod
    def settings(self, cs_id: str) -> list[Document]:
        """All settings of the station ordered by name; [] if none or unknown station."""

    @abstractmethod
    def merge_install_certificates(self, cs_id: str, certificates: Iterable[Mapping[str, str]]) -> None:
        """Upsert each certificate by certificate_id; within one call the last duplicate wins."""

    @abstractmethod
    def install_certificates(self, cs_id: str) -> list[Document]:
        """All certificates to install ordered by certificate_id; [] if none."""

    @abstractmethod
    def put_trigger(self, cs_id: str, trigger: Mapping[str, str]) -> None:
        """Replace the station's single trigger."""

    @abstractmethod
    def find_trigger(self, cs_id: str) -> Document | None:
        """The station's trigger, or None."""


class TokenRepository(ABC):
    """Authorization tokens keyed by uid, compared case-insensitively (OCPI's CiString): ``token_key(uid)``.

    Document: ``{"uid", "country_code", "party_id", "type", "contract_id", "issuer", "valid", "cache_mode",
    "last_updated", "visual_number"?, "group_id"?, "language_code"?, "emaid"?, "energy_contract"?,
    "default_profile_type"?}``. ``uid`` is kept as last written; ``emaid`` is the normalised eMAID of
    ``contract_id`` when it is one (lookups by contract id use it); ``energy_contract`` is
    ``{"supplier_name", "contract_id"?}``.
    """

    @abstractmethod
    def put(self, token: Mapping[str, Any]) -> None:
        """Create or replace the whole token under the canonical key of token["uid"]."""

    @abstractmethod
    def put_owned(self, token: Mapping[str, Any]) -> bool:
        """Create the token, or replace it if the stored one has the same country_code, party_id (both compared
        case-insensitively) and type, in one atomic operation; returns whether it was created.

        Raises Conflict (nothing written) when the stored token belongs to another party or has another type.
        """

    @abstractmethod
    def patch(self, uid: str, owner: tuple[str, str], token_type: str, changes: Mapping[str, Any]) -> Document:
        """Atomically set the ``changes`` (document keys; None removes an optional key) on the token of ``uid``
        owned by ``owner`` (country_code, party_id, case-insensitive) with ``token_type``; returns the result.

        Raises NotFound when there is no such token of that owner and type.
        """

    @abstractmethod
    def find(self, uid: str) -> Document | None:
        """The token, or None."""

    def get(self, uid: str) -> Document:
        """The token; raises NotFound."""
        token = self.find(uid)
        if token is None:
            raise NotFound("token", uid)
        return token

    @abstractmethod
    def find_by_contract_id(self, emaid: str) -> Document | None:
        """A token whose contract id is the normalised eMAID ``emaid`` (indexed), or None."""

    @abstractmethod
    def page(self, offset: int, limit: int) -> list[Document]:
        """Up to ``limit`` tokens after skipping ``offset``, ordered by canonical key (code-point order)."""


class CertificateRepository(ABC):
    """Client certificates for TLS offload. Document: ``{"hash", "pem"}``."""

    @abstractmethod
    def put(self, certificate_hash: str, pem: str) -> None:
        """Create or replace the certificate stored under the hash."""

    @abstractmethod
    def find(self, certificate_hash: str) -> Document | None:
        """The certificate, or None."""

    def get(self, certificate_hash: str) -> Document:
        """The certificate; raises NotFound."""
        certificate = self.find(certificate_hash)
        if certificate is None:
            raise NotFound("certificate", certificate_hash)
        return certificate

    @abstractmethod
    def remove(self, certificate_hash: str) -> None:
        """Delete the certificate; raises NotFound if it does not exist."""


class RegistrationRepository(ABC):
    """OCPI credentials tokens we accept inbound, stored only as their SHA-256 (hex) ``token_hash``.

    Document: ``{"token_hash", "status", "country_code"?, "party_id"?, "expires_at"?}``; a registration
    whose ``expires_at`` has passed is never found.
    """

    @abstractmethod
    def put(
        self,
        token_hash: str,
        status: str | None,
        identity: tuple[str, str] | None = None,
        expires_in: timedelta | None = None,
    ) -> None:
        """Store the token's hash with ``status`` (PENDING or REGISTERED), the party ``identity`` it may
        register as and, with ``expires_in``, an ``expires_at`` that long from now on the store's clock (the
        database server's on MongoDB, the host's on SQLite), against which ``find`` and ``page`` compare it.

        With ``status`` None a new token is stored as PENDING and an existing one keeps its status; an
        ``identity`` or ``expires_in`` that is None leaves the stored one.
        """

    @abstractmethod
    def find(self, token_hash: str) -> Document | None:
        """The registration, or None (also once it has expired)."""

    @abstractmethod
    def remove(self, token_hash: str) -> None:
        """Delete the registration if present."""

    @abstractmethod
    def page(self, offset: int, limit: int) -> list[Document]:
        """Up to ``limit`` registrations after skipping ``offset``, in the order of their key."""


class LocationRepository(ABC):
    """Charging locations keyed by id; the document is stored and returned whole, as data.

    Its timestamps are datetimes at ``last_updated`` of the location, of each EVSE and of each connector;
    every other value is plain JSON (a datetime elsewhere raises TypeError).
    """

    @abstractmethod
    def put(self, location: Mapping[str, Any]) -> None:
        """Create or replace the location stored under location["id"]."""

    @abstractmethod
    def find(self, location_id: str) -> Document | None:
        """The location, or None."""

    def get(self, location_id: str) -> Document:
        """The location; raises NotFound."""
        location = self.find(location_id)
        if location is None:
            raise NotFound("location", location_id)
        return location

    @abstractmethod
    def page(self, offset: int, limit: int) -> list[Document]:
        """Up to ``limit`` locations after skipping ``offset``, ordered by last_updated then id."""

    @abstractmethod
    def updated_between(
        self, offset: int, limit: int, date_from: datetime | None = None, date_to: datetime | None = None
    ) -> list[Document]:
        """As ``page``, of the locations whose last_updated is in [date_from, date_to) (a bound None is open;
        with either bound, a location without last_updated is left out), as one indexed query."""

    @abstractmethod
    def count(self, date_from: datetime | None = None, date_to: datetime | None = None) -> int:
        """How many locations ``updated_between`` would page through."""


class PartyRepository(ABC):
    """OCPI partners we completed a credentials handshake with, keyed by ``key`` (``CC*PID`` of its first role
    when it registered).

    Document: ``{"key", "roles": [{"role", "country_code", "party_id", "business_details"}], "version",
    "versions_url", "endpoints": [{"identifier", "role", "url"}], "outbound_token", "token_encoding",
    "inbound_token_hash", "registered_at", "last_push"?}``. ``outbound_token`` is the token we call the
    partner with; the one it calls us with is kept only as its SHA-256, ``inbound_token_hash``.

    Each identity (``party_identity(country_code, party_id)``) of a party's roles is held by that party
    alone; every write that would give one to a second party raises Conflict and writes nothing. The
    document is stored as data: whatever keys it holds, it comes back as it was given.
    """

    @abstractmethod
    def create(self, party: Mapping[str, Any]) -> None:
        """Store a new party; raises Conflict if the key or an identity of its roles is held already."""

    @abstractmethod
    def update(self, key: str, inbound_token_hash: str, party: Mapping[str, Any]) -> None:
        """Replace the party stored under ``key`` with ``party`` if it still has ``inbound_token_hash``
        (compare-and-swap); identities it no longer lists are released, new ones taken.

        Raises NotFound if the party is gone or changed meanwhile, Conflict if a new identity is held by
        another party.
        """

    @abstractmethod
    def find(self, key: str) -> Document | None:
        """The party, or None."""

    def get(self, key: str) -> Document:
        """The party; raises NotFound."""
        party = self.find(key)
        if party is None:
            raise NotFound("party", key)
        return party

    @abstractmethod
    def find_by_inbound_token_hash(self, token_hash: str) -> Document | None:
        """The party that calls us with the token of this hash, or None."""

    @abstractmethod
    def find_by_identity(self, country_code: str, party_id: str) -> Document | None:
        """The party holding the identity (compared case-insensitively), or None."""

    @abstractmethod
    def all(self) -> list[Document]:
        """Every party, ordered by key."""

    @abstractmethod
    def page(self, offset: int, limit: int) -> list[Document]:
        """Up to ``limit`` parties after skipping ``offset``, ordered by key (through the key's index)."""

    @abstractmethod
    def count(self) -> int:
        """How many parties there are."""

    @abstractmethod
    def remove(self, key: str) -> None:
        """Delete the party if present, releasing its identities."""

    @abstractmethod
    def record_push(self, key: str, result: Mapping[str, Any]) -> None:
        """Store ``result`` as the party's ``last_push``, leaving the rest; does nothing for an unknown party."""


class PushRepository(ABC):
    """The outbox of location pushes: one entry per (party, location), delivered by whichever worker claims it.

    Entry: ``{"id", "party", "location_id", "revision", "attempts", "due_at", "lease_until",
    "lease"?, "last_error"?}``. Times are UTC datetimes. An entry is due when ``due_at`` has passed and
    is free when ``lease_until`` has passed; claiming sets a lease atomically, so two workers never
    hold the same entry at once.

    Every worker of every host compares these times, so they are all read from one clock, the store's: the
    database server's where the engine has one (MongoDB's ``$$NOW``), the host's for SQLite, which serves one
    host. The callers give durations, never a time of their own clock.
    """

    @abstractmethod
    def enqueue(self, party: str, location_id: str) -> None:
        """Ask for (another) push of the location to the party, due at once, with a new revision.

        An entry already queued is reset (attempts 0, due now) but keeps a lease it holds, so a push in
        flight is not joined by a second one; it is sent again after that one ends.
        """

    @abstractmethod
    def claim(self, lease: str, lease_for: timedelta) -> Document | None:
        """Atomically take the earliest due, free entry, leasing it as ``lease`` for ``lease_for``; or None."""

    @abstractmethod
    def complete(self, entry_id: str, lease: str, revision: str) -> bool:
        """End a delivered push held under ``lease``: removed if still at ``revision``, else released to send
        the newer revision at once. Returns whether the entry was removed."""

    @abstractmethod
    def retry(self, entry_id: str, lease: str, revision: str, delay: timedelta, error: str) -> None:
        """Release a failed push held under ``lease``: one more attempt counted, due again after ``delay``.

        If a newer revision was enqueued meanwhile, it keeps its own due time and attempt count.
        """

    @abstractmethod
    def find(self, entry_id: str) -> Document | None:
        """The entry, or None."""

    @abstractmethod
    def all(self) -> list[Document]:
        """Every entry, ordered by due_at then id."""

    @abstractmethod
    def remove_party(self, party: str) -> None:
        """Drop every entry of the party, and its recorded results."""

    @abstractmethod
    def waiting_by_party(self) -> dict[str, int]:
        """How many entries each party has in the outbox, counted by the store (parties with none left out)."""

    @abstractmethod
    def record_result(self, result: Mapping[str, Any]) -> None:
        """Store the outcome of a push, replacing the one before for the same (party, location).

        Result: ``{"party", "location_id", "revision", "state": "delivered" | "failed" | "retrying", "at",
        "since"?, "attempts"?, "http_status"?, "status_code"?, "status_message"?, "error"?}``; ``at`` and
        ``since`` (when the revision first failed) are UTC datetimes.
        """

    @abstractmethod
    def results(self, location_id: str) -> list[Document]:
        """The recorded outcome of the location's pushes, one per party, ordered by party."""


class OcppRepository(ABC):
    """What the OCPP endpoint keeps per charge station: runtime details, change tracking and delivery outcomes.

    Runtime document: ``{"cs_id", "seq", "changed_at", "connection"?, "ocpp_version"?, "vendor"?, "model"?,
    "serial_number"?, "firmware_version"?, "last_boot"?, "last_seen"?}``. ``seq`` grows by one with every
    change staged for the station and every new connection; ``changed_at`` is when that happened.

    Staged items (settings, certificates to install, the trigger) carry delivery fields besides what
    ``ChargeStationRepository`` returns: ``revision`` (new each time the item is staged; absent on items staged
    before delivery existed), ``attempts``, ``due_at``, ``updated_at`` and ``detail``?. Times are UTC datetimes.
    """

    @abstractmethod
    def connect(self, cs_id: str, connection: str, ocpp_version: str, now: datetime) -> Document:
        """Record that the station is now served by ``connection`` (replacing any other) and bump its seq;
        returns the runtime document as it is after that write, in the same round trip."""

    @abstractmethod
    def disconnect(self, cs_id: str, connection: str, now: datetime) -> bool:
        """Forget ``connection`` if it is still the station's; returns whether it was."""

    @abstractmethod
    def record_boot(self, cs_id: str, boot: Mapping[str, str], now: datetime) -> None:
        """Store the boot details (vendor, model, serial_number?, firmware_version?) and last_boot = last_seen = now.

        Every setting the station answered RebootRequired becomes Accepted: the reboot applied it.
        """

    @abstractmethod
    def touch(self, cs_id: str, now: datetime) -> None:
        """Set last_seen."""

    @abstractmethod
    def touch_many(self, seen: Mapping[str, datetime]) -> None:
        """Set last_seen of each station named, in one write to the store."""

    @abstractmethod
    def runtime(self, cs_id: str) -> Document | None:
        """The station's runtime document, or None if nothing was recorded."""

    @abstractmethod
    def changes(self, cursor: object | None) -> tuple[list[Document], object]:
        """``{"cs_id", "seq", "connection"?}`` of the stations changed after ``cursor``, and the cursor to ask
        with next time. ``None`` starts at the latest change now (no changes returned).

        Every change staged for a station, and every new connection, takes the next number of one sequence the
        store keeps; a cursor is an opaque position in it, held by the one poller that asked. Asked with the
        cursor it returned, a poller sees every change once at least (a station changed again meanwhile is
        returned once, in its latest state), including one whose write lands after a later number's: where
        the engine cannot order writes by number (MongoDB), numbers skipped over are asked for again for a
        few seconds. With nothing changed it is one indexed query that returns nothing.
        """

    @abstractmethod
    def deliveries(self, cs_id: str) -> Document:
        """``{"settings": [...], "certificates": [...], "trigger": {...} | None}`` with their delivery fields."""

    @abstractmethod
    def deliveries_of(self, cs_ids: Sequence[str]) -> dict[str, Document]:
        """``deliveries`` of each station named, in one query per kind of item whatever their number."""

    @abstractmethod
    def settle(self, cs_id: str, kind: str, key: str, revision: str | None, update: Mapping[str, Any]) -> bool:
        """Apply ``update`` (status, detail, attempts, due_at, updated_at; a None detail removes it) to one item.

        ``kind`` is ``setting`` (key: name), ``certificate`` (key: certificate_id) or ``trigger`` (key: message).
        Only if the item is still at ``revision``: an item staged again meanwhile is left alone. Returns whether
        it was updated.
        """

    @abstractmethod
    def set_password_hash(self, cs_id: str, password_hash: str) -> None:
        """Replace the station's stored password hash, keeping the rest of its auth record."""

    @abstractmethod
    def next_transaction_id(self) -> int:
        """A new OCPP 1.6 transaction id: never given before by this store, 1 to 2**31 - 1."""

    @abstractmethod
    def stations(self, offset: int, limit: int) -> list[Document]:
        """A page of registered stations ordered by cs_id: ``{"cs_id", "connected", "ocpp_version"?, "last_seen"?,
        "pending"}``, ``pending`` counting the settings, certificates and trigger still Pending."""


def token_key(uid: str) -> str:
    """The canonical key of a token uid: OCPI's CiString compares printable ASCII case-insensitively."""
    return uid.upper()


def party_identity(country_code: str, party_id: str) -> str:
    """The canonical ``CC*PID`` of a party identity (both compared case-insensitively)."""
    return f"{country_code.upper()}*{party_id.upper()}"


def push_id(party: str, location_id: str) -> str:
    """The outbox entry id of a location's push to a party."""
    return f"{party}/{location_id}"


class Storage(ABC):
    """One engine's repositories, opened once per worker process."""

    #: Whether a read is answered in-process, without waiting on a network or on a writer's lock, so that
    #: an event loop may call it directly instead of handing it to a thread.
    reads_in_process: bool = False

    charge_stations: ChargeStationRepository
    tokens: TokenRepository
    certificates: CertificateRepository
    registrations: RegistrationRepository
    locations: LocationRepository
    parties: PartyRepository
    pushes: PushRepository
    ocpp: OcppRepository

    @abstractmethod
    def ping(self) -> None:
        """Return if the store answers; raise StorageUnavailable otherwise."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
