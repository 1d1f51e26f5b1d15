"""Upgrades keep data: the stores the previous release wrote (``data/``, see its README) open with this one on
every engine, serve every record as that release stored it, deliver what it queued and staged, and upgrade
once: opening again changes nothing. A store of a newer release is refused; an interrupted upgrade carries on.
"""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mongomock_ng as mongomock
import pytest
from bson import json_util
from bson.json_util import JSONOptions
from pymongo import ASCENDING, MongoClient
from pymongo.errors import ConnectionFailure

from maeve_api.ocpi.app import create_ocpi_app
from maeve_api.ocpi.locations import location_page, location_state
from maeve_api.ocpi.parties import list_parties
from maeve_api.ocpi.publisher import Publisher
from maeve_api.ocpi.registration import token_hash
from maeve_api.settings import Settings
from maeve_api.storage import SchemaTooNew, Storage, StorageUnavailable, check_schema_version
from maeve_api.storage.mongo import MongoStorage
from maeve_api.storage.mongo import engine as mongo_engine
from maeve_api.storage.sqlite import SqliteStorage
from maeve_api.storage.sqlite import engine as sqlite_engine
from maeve_api.web.app import create_app
from tests.conftest import MONGODB_URI_VARIABLE as MONGODB_URI
from tests.conftest import NO_SERVER_CLOCK, _with_database, free_port, start_gunicorn_process, stop_process
from tests.upgrade.make_data import (
    CLEAR_TOKENS,
    CLIENT_PEM,
    CS001_PASSWORD_HASH,
    LEGACY_PASSWORD_HASH,
    PREVIOUS_RELEASE,
    REGISTERED_AT,
    T0,
)

DATA = Path(__file__).parent / "data"
SQLITE_FIXTURE = DATA / f"{PREVIOUS_RELEASE}.db"
MONGO_FIXTURE = DATA / f"{PREVIOUS_RELEASE}-mongo.json"
CLIENT_CERTIFICATE_HASH = "sIdIQcLPFgRwDOOAj3LkMdVxYKXsDSjVRON4vLERruQ"
LATER = T0 + timedelta(minutes=5)
MONGO_ENGINES = ["mongomock", "nx27017", "mongoeco", "mongodb"]


def load_mongo_fixture(client: MongoClient[Any], database: str) -> None:
    """The previous release's MongoDB database: its collections, indexes and documents, as it left them."""
    # Timestamps as a server returns them to the engine (tz-aware UTC): mongomock hands back what it was given.
    dump = json_util.loads(MONGO_FIXTURE.read_text(), json_options=JSONOptions(tz_aware=True, tzinfo=UTC))
    for name, documents in dump["collections"].items():
        collection = client[database].create_collection(name)
        for index in dump["indexes"][name]:
            collection.create_index([tuple(pair) for pair in index["key"]], name=index["name"], unique=index["unique"])
        if documents:
            collection.insert_many(documents)


class Previous:
    """The previous release's store on one engine, opened by this release as often as a test asks."""

    def __init__(self, request: pytest.FixtureRequest, engine: str, directory: Path) -> None:
        self.engine = engine
        self.opened: list[Storage] = []
        if engine == "sqlite":
            self.path = directory / "previous.db"
            shutil.copy(SQLITE_FIXTURE, self.path)
            return
        if engine == "mongomock":  # tz-aware as MongoStorage.from_url makes its clients (mongomock keeps no codec)
            self.client: MongoClient[Any] = mongomock.MongoClient(tz_aware=True, tzinfo=UTC)
        else:  # the client of the suite's storage on that engine (every MongoDB engine it knows), another database
            carrier = request.getfixturevalue("make_storage")(engine)
            if not isinstance(carrier, MongoStorage):
                pytest.skip(f"no loader for the previous release's store on {engine}")
            self.client = carrier.client
        self.database = f"maeve_upgrade_{uuid.uuid4().hex[:12]}"
        request.addfinalizer(lambda: self.client.drop_database(self.database))
        load_mongo_fixture(self.client, self.database)

    def open(self) -> Storage:
        """This release's storage on it (the upgrade runs on the first open)."""
        storage: Storage = (
            SqliteStorage(self.path) if self.engine == "sqlite" else MongoStorage(self.client, self.database)
        )
        self.opened.append(storage)
        return storage

    def contents(self) -> str:
        """Everything the store holds, as text: the SQLite files' bytes, or every MongoDB document."""
        if self.engine == "sqlite":
            files = sorted(self.path.parent.glob(f"{self.path.name}*"))
            return b"".join(file.read_bytes() for file in files).decode("latin-1")
        db = self.client[self.database]
        return str({name: list(db[name].find()) for name in db.list_collection_names()})

    def records(self) -> list[Any]:
        """Every record the store holds: the SQLite database as SQL, or every MongoDB document and index."""
        if self.engine == "sqlite":
            with sqlite3.connect(self.path) as connection:
                return [*connection.iterdump(), connection.execute("PRAGMA user_version").fetchone()[0]]
        db = self.client[self.database]
        names = sorted(db.list_collection_names())
        return [(name, list(db[name].find().sort("_id")), db[name].index_information()) for name in names]

    def version(self) -> int | None:
        """The schema version the store records."""
        if self.engine == "sqlite":
            return sqlite_engine.stored_version(self.path)
        return mongo_engine.stored_version(self.client, self.database)


@pytest.fixture
def previous(request: pytest.FixtureRequest, storage_engine: str, tmp_path: Path) -> Iterator[Previous]:
    """The previous release's store, once per engine (real MongoDB only when MAEVE_TEST_MONGODB_URI is set)."""
    store = Previous(request, storage_engine, tmp_path)
    yield store
    for storage in store.opened:
        storage.close()


@pytest.fixture
def upgraded(previous: Previous) -> Storage:
    """The previous release's store, opened (so upgraded) by this release."""
    return previous.open()


@pytest.fixture(params=MONGO_ENGINES)
def mongo_previous(request: pytest.FixtureRequest, tmp_path: Path) -> Previous:
    """The previous release's MongoDB database on each MongoDB engine."""
    if request.param == "mongodb":
        request.getfixturevalue("mongodb_client")  # skips unless MAEVE_TEST_MONGODB_URI is set
    return Previous(request, request.param, tmp_path)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class _Unclosed:
    """A storage the app's lifespan may close without closing the test's."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    def close(self) -> None:
        pass


def api_answers(storage: Storage) -> dict[str, tuple[int, Any]]:
    """The internal API's answer (status, body) to a read of every record of the previous release."""
    app = create_app(Settings(validate_responses=True), storage_factory=lambda: _Unclosed(storage))
    with app.test_client(base_url="http://testserver/api/v0") as client:
        answers = {path: client.get(path) for path in EXPECTED_API}
    return {path: (response.status_code, response.json()) for path, response in answers.items()}


#: What the internal API serves of the previous release's records, the same on every engine: every station
#: (with what was staged for it), token (case-insensitively; of R9CARD and r9card, the later, then the greater
#: uid), client certificate, location (with the pushes queued for it) and party (registrations by token hash).
EXPECTED_API: dict[str, tuple[int, Any]] = {"/cs?offset=0&limit=10": (200,
                           [{"csId": "cs001", "connected": False, "pending": 0},
                            {"csId": "legacy-16", "connected": False, "pending": 2},
                            {"csId": "legacy-201", "connected": False, "pending": 3}]),
 "/cs/cs001": (200,
               {"securityProfile": 1,
                "invalidUsernameAllowed": True,
                "connected": False,
                "settings": {},
                "certificates": []}),
 "/cs/legacy-16": (200,
                   {"securityProfile": 0,
                    "invalidUsernameAllowed": False,
                    "connected": False,
                    "settings": {"HeartbeatInterval": {"value": "60", "status": "Pending"}},
                    "certificates": [],
                    "trigger": {"message": "BootNotification", "status": "Pending"}}),
 "/cs/legacy-201": (200,
                    {"securityProfile": 0,
                     "invalidUsernameAllowed": False,
                     "connected": False,
                     "settings": {"Done/Already": {"value": "1", "status": "Accepted"},
                                  "OCPPCommCtrlr/HeartbeatInterval": {"value": "300", "status": "Pending"}},
                     "certificates": [{"id": "de5edf2d0a358bc26e5e88b26c38016d845a2639bc02133441c5615c28e31eb2",
                                       "type": "V2G",
                                       "status": "Pending"}],
                     "trigger": {"message": "StatusNotification", "status": "Pending"}}),
 "/cs/cs001/auth": (200,
                    {"securityProfile": 1,
                     "base64SHA256Password": CS001_PASSWORD_HASH,
                     "invalidUsernameAllowed": True}),
 "/cs/legacy-16/auth": (200,
                        {"securityProfile": 0,
                         "base64SHA256Password": LEGACY_PASSWORD_HASH,
                         "invalidUsernameAllowed": False}),
 "/cs/legacy-201/auth": (200,
                         {"securityProfile": 0,
                          "base64SHA256Password": LEGACY_PASSWORD_HASH,
                          "invalidUsernameAllowed": False}),
 "/token?offset=0&limit=10": (200,
                              [{"countryCode": "GB",
                                "partyId": "TWK",
                                "type": "RFID",
                                "uid": "DEADBEEF",
                                "contractId": "GBTWK012345678V",
                                "visualNumber": "DF-01",
                                "issuer": "Thoughtworks",
                                "groupId": "fleet",
                                "valid": True,
                                "languageCode": "en",
                                "cacheMode": "ALWAYS",
                                "lastUpdated": "2026-11-24T12:00:00Z"},
                               {"countryCode": "FR",
                                "partyId": "AT9",
                                "type": "RFID",
                                "uid": "r9card",
                                "contractId": "GBTWK012345678V",
                                "issuer": "Thoughtworks",
                                "valid": True,
                                "cacheMode": "ALWAYS",
                                "lastUpdated": "2026-11-24T12:00:00Z"}]),
 "/token/DEADBEEF": (200,
                     {"countryCode": "GB",
                      "partyId": "TWK",
                      "type": "RFID",
                      "uid": "DEADBEEF",
                      "contractId": "GBTWK012345678V",
                      "visualNumber": "DF-01",
                      "issuer": "Thoughtworks",
                      "groupId": "fleet",
                      "valid": True,
                      "languageCode": "en",
                      "cacheMode": "ALWAYS",
                      "lastUpdated": "2026-11-24T12:00:00Z"}),
 "/token/deadbeef": (200,
                     {"countryCode": "GB",
                      "partyId": "TWK",
                      "type": "RFID",
                      "uid": "DEADBEEF",
                      "contractId": "GBTWK012345678V",
                      "visualNumber": "DF-01",
                      "issuer": "Thoughtworks",
                      "groupId": "fleet",
                      "valid": True,
                      "languageCode": "en",
                      "cacheMode": "ALWAYS",
                      "lastUpdated": "2026-11-24T12:00:00Z"}),
 "/token/R9CARD": (200,
                   {"countryCode": "FR",
                    "partyId": "AT9",
                    "type": "RFID",
                    "uid": "r9card",
                    "contractId": "GBTWK012345678V",
                    "issuer": "Thoughtworks",
                    "valid": True,
                    "cacheMode": "ALWAYS",
                    "lastUpdated": "2026-11-24T12:00:00Z"}),
 f"/certificate/{CLIENT_CERTIFICATE_HASH}": (200, {"certificate": CLIENT_PEM}),
 "/location/loc1": (200,
                    {"location": {"id": "loc1",
                                  "country_code": "GB",
                                  "party_id": "TWK",
                                  "name": "Gridlink",
                                  "address": "1 Main Street",
                                  "city": "London",
                                  "country": "GBR",
                                  "coordinates": {"latitude": "51.53146", "longitude": "-0.12360"},
                                  "evses": [{"uid": "cs001-1",
                                             "evse_id": "GB*TWK*E001*1",
                                             "connectors": [{"id": "1",
                                                             "standard": "IEC_62196_T2",
                                                             "format": "SOCKET",
                                                             "power_type": "AC_3_PHASE",
                                                             "max_voltage": 400,
                                                             "max_amperage": 32,
                                                             "last_updated": "2026-11-24T12:00:00Z"}],
                                             "status": "UNKNOWN",
                                             "last_updated": "2026-11-24T12:00:00Z"},
                                            {"uid": "cs001-2",
                                             "connectors": [],
                                             "status": "UNKNOWN",
                                             "last_updated": "2026-11-24T12:00:00Z"}],
                                  "time_zone": "Europe/London",
                                  "last_updated": "2026-11-24T12:00:00Z"},
                     "publications": [{"party": "NL*EMS",
                                       "state": "pending",
                                       "attempts": 1,
                                       "next_attempt_at": "2026-11-24T12:00:02Z"}]}),
 "/location/loc2": (200,
                    {"location": {"id": "loc2",
                                  "country_code": "GB",
                                  "party_id": "TWK",
                                  "name": "Gridlink",
                                  "address": "1 Main Street",
                                  "city": "London",
                                  "country": "GBR",
                                  "coordinates": {"latitude": "51.53146", "longitude": "-0.12360"},
                                  "evses": [],
                                  "time_zone": "Europe/London",
                                  "last_updated": "2026-11-24T12:00:00Z"},
                     "publications": [{"party": "NL*EMS",
                                       "state": "pending",
                                       "attempts": 0,
                                       "next_attempt_at": "2026-11-24T12:00:00Z"}]}),
 "/party?offset=0&limit=10": (200,
                              [{"kind": "party",
                                "key": "NL*EMS",
                                "status": "REGISTERED",
                                "version": "2.2.1",
                                "roles": [{"role": "EMSP",
                                           "country_code": "NL",
                                           "party_id": "EMS",
                                           "business_name": "eMSP"}],
                                "registered_at": "2026-01-02T03:04:05Z",
                                "last_push": {"location_id": "loc1",
                                              "at": "2026-11-24T12:00:00Z",
                                              "ok": False,
                                              "error": "PUT location: HTTP 503"}},
                               {"kind": "registration", "status": "REGISTERED"},
                               {"kind": "registration", "status": "PENDING"}])}


def test_every_record_is_served_as_the_previous_release_stored_it(previous):
    """Through the internal API every record of the previous release reads back as it was stored, on every
    engine; opening the store a second time changes nothing."""
    assert api_answers(previous.open()) == EXPECTED_API
    assert api_answers(previous.open()) == EXPECTED_API


def test_the_upgrade_runs_once_and_records_the_version(previous):
    """The first open brings the store to this release's schema version; a second open finds nothing to do
    and leaves every byte of the store as it was."""
    assert previous.version() == (2 if previous.engine == "sqlite" else mongo_engine._UNVERSIONED)
    previous.open().close()
    version = sqlite_engine.SCHEMA_VERSION if previous.engine == "sqlite" else mongo_engine.SCHEMA_VERSION
    assert previous.version() == version
    once = previous.records()
    previous.open().close()
    assert previous.records() == once


def test_tokens_are_found_case_insensitively_under_their_canonical_key(upgraded):
    """Tokens the previous release kept by the uid as sent are found whatever the case; of two that differed
    only in case one is kept, and its owner cannot be taken over by a differently-cased write."""
    assert upgraded.tokens.find("deadbeef")["uid"] == "DEADBEEF"
    assert upgraded.tokens.find_by_contract_id("GBTWK012345678V") is not None
    r9 = upgraded.tokens.get("R9card")
    assert (r9["uid"], r9["country_code"].upper(), r9["party_id"].upper(), r9["valid"]) == ("r9card", "FR", "AT9", True)
    assert [token["uid"] for token in upgraded.tokens.page(0, 10)] == ["DEADBEEF", "r9card"]
    assert upgraded.tokens.put_owned({**r9, "country_code": "fr", "party_id": "at9"}) is False
    assert upgraded.tokens.get("DEADBEEF")["contract_id"] == "GBTWK012345678V"


def test_clear_text_tokens_become_hashes_and_leave_the_store(previous):
    """Registrations and the party are found by the hash of their token, and no clear-text token is left
    anywhere in the store (on SQLite, not in the file's free pages or its WAL either)."""
    contents = previous.contents()
    assert all(token in contents for token in CLEAR_TOKENS)
    store = previous.open()
    assert store.registrations.find(token_hash("previous-token-a-pending"))["status"] == "PENDING"
    assert store.registrations.find(token_hash("previous-token-a-registered"))["status"] == "REGISTERED"
    party = store.parties.find_by_inbound_token_hash(token_hash("previous-inbound-token-c"))
    assert party is not None and party["key"] == "NL*EMS" and "inbound_token" not in party
    store.close()
    contents = previous.contents()
    assert [token for token in CLEAR_TOKENS if token in contents] == []


def test_parties_and_locations_keep_their_timestamps_and_documents(upgraded):
    """The party keeps its roles, its identity and its timestamps to the millisecond; locations keep theirs
    as timestamps."""
    party = upgraded.parties.find_by_identity("nl", "ems")
    assert party["key"] == "NL*EMS"
    assert party["registered_at"] == REGISTERED_AT
    assert party["last_push"] == {"location_id": "loc1", "at": T0, "ok": False, "error": "PUT location: HTTP 503"}
    assert party["roles"][0]["business_details"]["logo"]["category"] == "OPERATOR"
    assert party["outbound_token"] == "previous-outbound-token"
    location = upgraded.locations.get("loc1")
    assert location["last_updated"] == T0
    assert location["evses"][0]["connectors"][0]["last_updated"] == T0


def test_previous_data_is_read_and_listed(upgraded):
    """Stored locations page and count in the store, read back with their queued pushes, and parties and
    registrations are listed."""
    page, total = location_page(upgraded, Settings(), 0, 10)
    assert total == 2 and [location["id"] for location in page] == ["loc1", "loc2"]
    assert upgraded.locations.count(date_from=datetime(2000, 1, 1, tzinfo=UTC)) == 2
    state = location_state(upgraded, "loc1")
    assert state["location"]["name"] == "Gridlink"
    [publication] = state["publications"]
    assert (publication["party"], publication["state"], publication["attempts"]) == ("NL*EMS", "pending", 1)
    assert upgraded.pushes.waiting_by_party() == {"NL*EMS": 2}
    listed = list_parties(upgraded, 0, 10)
    assert [(item["kind"], item["status"]) for item in listed] == [
        ("party", "REGISTERED"),
        ("registration", "REGISTERED"),
        ("registration", "PENDING"),
    ]
    assert listed[0]["last_push"]["ok"] is False


class RecordingClient:
    """Stands for the partner client: records the pushes a publisher makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []

    def call(self, step, method, url, token, encoding, body=None, routing=None, correlation_id=None, deadline=None):
        self.calls.append((method, url, body))
        return None

    def close(self) -> None:
        pass


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
def test_queued_pushes_of_the_previous_release_are_delivered(upgraded):
    """The outbox entries the previous release left (one retried already) are claimed, sent and completed, and
    their delivery is recorded."""
    client = RecordingClient()
    publisher = Publisher(upgraded, Settings(), client=client, clock=lambda: LATER)  # type: ignore[arg-type]
    assert publisher.deliver_due() == 2
    assert sorted(url.rsplit("/", 1)[1] for _method, url, _body in client.calls) == ["loc1", "loc2"]
    assert upgraded.pushes.all() == []
    [delivered] = upgraded.pushes.results("loc1")
    assert delivered["state"] == "delivered"
    assert location_state(upgraded, "loc1")["publications"][0]["state"] == "delivered"
    upgraded.pushes.enqueue("NL*EMS", "loc1")
    assert upgraded.pushes.waiting_by_party() == {"NL*EMS": 1}


def test_items_staged_by_the_previous_release_are_pending_delivery(upgraded):
    """Settings, certificates and triggers staged before delivery existed read as never attempted and due,
    and their outcome can be recorded."""
    found = upgraded.ocpp.deliveries("legacy-201")
    assert [(s["name"], s["status"], s["attempts"]) for s in found["settings"]] == [
        ("Done/Already", "Accepted", 0),
        ("OCPPCommCtrlr/HeartbeatInterval", "Pending", 0),
    ]
    assert "revision" not in found["settings"][1]
    assert [c["status"] for c in found["certificates"]] == ["Pending"]
    assert found["trigger"]["status"] == "Pending"
    assert upgraded.ocpp.settle("legacy-201", "trigger", "StatusNotification", None, {"status": "Accepted"})
    assert upgraded.ocpp.deliveries("legacy-201")["trigger"]["status"] == "Accepted"
    assert upgraded.charge_stations.find_auth("legacy-16")["security_profile"] == 0


async def _ocpi_get(storage: Storage, path: str, token: str) -> Any:
    app = create_ocpi_app(Settings(validate_responses=True), storage_factory=lambda: _Unclosed(storage), publish=False)
    encoded = base64.b64encode(token.encode()).decode()
    with app.test_client(base_url="http://testserver/ocpi") as client:
        return client.get(path, headers={"Authorization": f"Token {encoded}"})


@pytest.mark.anyio
async def test_the_party_and_registrations_still_authenticate_with_their_tokens(upgraded):
    """The party calls with the token it was given before the upgrade and reads our locations; a registration
    still opens the handshake; any other token is refused."""
    response = await _ocpi_get(upgraded, "/2.2.1/locations", "previous-inbound-token-c")
    assert response.status_code == 200, response.text
    assert [location["id"] for location in response.json()["data"]] == ["loc1", "loc2"]
    response = await _ocpi_get(upgraded, "/versions", "previous-token-a-pending")
    assert response.status_code == 200, response.text
    assert (await _ocpi_get(upgraded, "/versions", "not-a-token-of-ours")).status_code == 401


def test_a_database_upgraded_from_the_previous_release_has_the_schema_of_a_new_one(tmp_path):
    """Every table, column and index of a new SQLite database is there, the same, in an upgraded one."""

    def schema(path: Path) -> dict[str, Any]:
        with sqlite3.connect(path) as connection:
            tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {
                "tables": {t: sorted(c[1:] for c in connection.execute(f"PRAGMA table_info({t})")) for t in tables},
                "indexes": sorted(connection.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'")),
                "version": connection.execute("PRAGMA user_version").fetchone()[0],
            }

    SqliteStorage(tmp_path / "new.db").close()
    shutil.copy(SQLITE_FIXTURE, tmp_path / "old.db")
    SqliteStorage(tmp_path / "old.db").close()
    assert schema(tmp_path / "old.db") == schema(tmp_path / "new.db")


def test_the_sqlite_schema_is_brought_up_to_date_in_place(tmp_path):
    """Opening the file adds what this release needs and marks its version; the rows are kept."""
    shutil.copy(SQLITE_FIXTURE, tmp_path / "previous.db")
    with sqlite3.connect(tmp_path / "previous.db") as before:
        assert before.execute("PRAGMA user_version").fetchone()[0] < sqlite_engine.SCHEMA_VERSION
        kept = before.execute("SELECT * FROM location_pushes ORDER BY id").fetchall()
    SqliteStorage(tmp_path / "previous.db").close()
    with sqlite3.connect(tmp_path / "previous.db") as after:
        assert after.execute("PRAGMA user_version").fetchone()[0] == sqlite_engine.SCHEMA_VERSION
        assert after.execute("SELECT * FROM location_pushes ORDER BY id").fetchall() == kept


@pytest.mark.parametrize("module", [sqlite_engine, mongo_engine], ids=["sqlite", "mongo"])
def test_each_migration_takes_the_next_version(module):
    """The chain names each version once, in order, and ends at the version this release writes."""
    versions = [version for version, _migration in module.MIGRATIONS]
    assert versions == list(range(versions[0], versions[0] + len(versions)))
    assert versions[-1] == module.SCHEMA_VERSION


def test_a_sqlite_upgrade_that_fails_midway_is_rolled_back_to_the_last_step_and_resumed(tmp_path, monkeypatch):
    """A step that fails leaves the file at the version before it, its data untouched; the next open runs the
    step again and ends where an uninterrupted upgrade ends."""
    shutil.copy(SQLITE_FIXTURE, tmp_path / "previous.db")
    shutil.copy(SQLITE_FIXTURE, tmp_path / "reference.db")
    with sqlite3.connect(tmp_path / "previous.db") as before:
        rows = before.execute("SELECT * FROM registrations ORDER BY token").fetchall()
    steps = dict(sqlite_engine.MIGRATIONS)

    def fails_midway(connection: sqlite3.Connection) -> bool:
        steps[3](connection)  # every statement of the step has run when the process dies
        raise OSError("the process was killed")

    failing = tuple((version, fails_midway if version == 3 else step) for version, step in sqlite_engine.MIGRATIONS)
    monkeypatch.setattr(sqlite_engine, "MIGRATIONS", failing)
    with pytest.raises(OSError):
        SqliteStorage(tmp_path / "previous.db")
    with sqlite3.connect(tmp_path / "previous.db") as after:
        assert after.execute("PRAGMA user_version").fetchone()[0] == 2
        assert after.execute("SELECT * FROM registrations ORDER BY token").fetchall() == rows
    monkeypatch.undo()
    assert api_answers(SqliteStorage(tmp_path / "previous.db")) == api_answers(SqliteStorage(tmp_path / "reference.db"))


def test_a_new_sqlite_database_stopped_between_steps_carries_on(tmp_path, monkeypatch):
    """Each step is committed with its version: stopped after step 2, a new file is at version 2, and the
    next open finishes it."""
    monkeypatch.setattr(sqlite_engine, "MIGRATIONS", sqlite_engine.MIGRATIONS[:2])
    SqliteStorage(tmp_path / "new.db").close()
    assert sqlite_engine.stored_version(tmp_path / "new.db") == 2
    monkeypatch.undo()
    storage = SqliteStorage(tmp_path / "new.db")
    storage.registrations.put(token_hash("t"), None)
    storage.close()
    assert sqlite_engine.stored_version(tmp_path / "new.db") == sqlite_engine.SCHEMA_VERSION


def test_clear_text_tokens_are_overwritten_even_if_the_vacuum_never_runs(tmp_path, monkeypatch):
    """Rows the upgrade deletes are overwritten in place, so a process stopped after the upgrade committed but
    before the VACUUM leaves no clear-text token in the file."""
    shutil.copy(SQLITE_FIXTURE, tmp_path / "previous.db")
    connect = sqlite3.connect

    def off_by_default(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)
        connection.execute("PRAGMA secure_delete = OFF")  # as SQLite builds without SQLITE_SECURE_DELETE open
        return connection

    monkeypatch.setattr(sqlite3, "connect", off_by_default)
    steps = dict(sqlite_engine.MIGRATIONS)
    monkeypatch.setattr(
        sqlite_engine, "MIGRATIONS", (*sqlite_engine.MIGRATIONS[:-1], (3, lambda c: steps[3](c) and False))
    )
    storage = SqliteStorage(tmp_path / "previous.db")
    storage.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    storage.close()
    stored = b"".join(file.read_bytes() for file in tmp_path.glob("previous.db*"))
    assert [token for token in CLEAR_TOKENS if token.encode() in stored] == []


def test_a_mongo_upgrade_that_fails_midway_is_run_again_from_the_start(mongo_previous, monkeypatch):
    """Without transactions a step can stop midway; the version is not recorded, and the next open runs the
    step again and ends where an uninterrupted upgrade ends."""
    monkeypatch.setattr(mongo_engine, "_parties_as_text_with_identities", _raise_killed)
    with pytest.raises(OSError):
        mongo_previous.open()
    assert mongo_previous.version() == mongo_engine._UNVERSIONED
    monkeypatch.undo()
    assert api_answers(mongo_previous.open()) == EXPECTED_API
    assert mongo_previous.version() == mongo_engine.SCHEMA_VERSION


def _raise_killed(_db: Any) -> None:
    raise OSError("the process was killed")


def test_a_sqlite_database_of_a_newer_release_is_refused_untouched(tmp_path):
    """A file at a version this release does not know is refused with one line saying so, and not changed."""
    path = tmp_path / "newer.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE from_the_future (x)")
        connection.execute(f"PRAGMA user_version = {sqlite_engine.SCHEMA_VERSION + 1}")
    before = path.read_bytes()
    with pytest.raises(SchemaTooNew) as refused:
        SqliteStorage(path)
    message = str(refused.value)
    assert "\n" not in message
    assert f"schema version {sqlite_engine.SCHEMA_VERSION + 1}, newer than this release's" in message
    assert path.read_bytes() == before
    with pytest.raises(SchemaTooNew):
        check_schema_version(f"sqlite:///{path}")


def test_a_new_mongo_database_has_the_version_and_indexes_of_an_upgraded_one(mongo_previous):
    """A new database is recorded at this release's version at once, with the indexes (keys and uniqueness) an
    upgraded one ends with."""

    def indexes(database: str) -> dict[str, list[tuple[Any, bool]]]:
        db = mongo_previous.client[database]
        found = {name: db[name].index_information().values() for name in db.list_collection_names()}
        return {
            name: sorted((info["key"], bool(info.get("unique"))) for info in infos) for name, infos in found.items()
        }

    mongo_previous.open()
    new = f"maeve_new_{uuid.uuid4().hex[:12]}"
    try:
        MongoStorage(mongo_previous.client, new)
        assert mongo_engine.stored_version(mongo_previous.client, new) == mongo_engine.SCHEMA_VERSION
        created, upgraded = indexes(new), indexes(mongo_previous.database)
        assert {name: upgraded.get(name) for name in created} == created
        assert {name for name, _keys, _options in mongo_engine.INDEXES} <= created.keys()
    finally:
        mongo_previous.client.drop_database(new)


def test_a_mongo_database_of_a_newer_release_is_refused_untouched(request, mongo_previous):
    """A database at a version this release does not know is refused before any index or document changes."""
    db = mongo_previous.client[mongo_previous.database]
    db["maeve_schema"].insert_one({"_id": "schema", "version": mongo_engine.SCHEMA_VERSION + 1})
    before = mongo_previous.contents(), {name: db[name].index_information() for name in db.list_collection_names()}
    with pytest.raises(SchemaTooNew, match=f"schema version {mongo_engine.SCHEMA_VERSION + 1}, newer than"):
        mongo_previous.open()
    after = mongo_previous.contents(), {name: db[name].index_information() for name in db.list_collection_names()}
    assert after == before
    if mongo_previous.engine != "mongomock":  # which has no URL
        servers = {"nx27017": "nx_server", "mongoeco": "mongoeco_server"}
        engine = mongo_previous.engine
        server = request.getfixturevalue(servers[engine]) if engine in servers else os.environ[MONGODB_URI]
        with pytest.raises(SchemaTooNew):
            check_schema_version(_with_database(server, mongo_previous.database))


def test_a_worker_that_reaches_mongodb_only_later_refuses_a_newer_database(monkeypatch):
    """A worker whose MongoDB did not answer at open checks the version on its first operation: a newer
    database is refused (as unavailable: 503, not ready) and left as it is."""
    client = mongomock.MongoClient(tz_aware=True, tzinfo=UTC)

    def down(_db: Any) -> None:
        raise ConnectionFailure("no server")

    monkeypatch.setattr(mongo_engine, "_migrate", down)
    storage = MongoStorage(client, "maeve")
    monkeypatch.undo()
    client["maeve"]["maeve_schema"].insert_one({"_id": "schema", "version": mongo_engine.SCHEMA_VERSION + 1})
    with pytest.raises(SchemaTooNew):
        storage.tokens.find("DEADBEEF")
    assert issubclass(SchemaTooNew, StorageUnavailable)
    assert client["maeve"].list_collection_names() == ["maeve_schema"]


def test_a_mongodb_that_does_not_answer_is_left_to_the_workers_to_check():
    """Before the workers start, a MongoDB that does not answer is not checked (each worker checks when it
    reaches it): the start is not refused for it."""
    assert check_schema_version(f"mongodb://127.0.0.1:{free_port()}/maeve") is None


def test_an_index_whose_options_changed_is_replaced(mongo_previous):
    """An index on the same keys with other options than this release's (the party token hash, not unique) is
    dropped and created again, not an error; opening again leaves it."""
    db = mongo_previous.client[mongo_previous.database]
    parties = db["ocpi_parties"]
    for name in parties.index_information():
        if name != "_id_":
            parties.drop_index(name)
    parties.create_index([("inbound_token_hash", ASCENDING)])
    for _ in range(2):
        storage = mongo_previous.open()
        assert storage.parties.find("NL*EMS")["key"] == "NL*EMS"
        on_hash = [info for info in parties.index_information().values() if info["key"] == [("inbound_token_hash", 1)]]
        assert [bool(info.get("unique")) for info in on_hash] == [True]


def test_the_service_refuses_to_start_on_a_store_of_a_newer_release(tmp_path):
    """``maeve-api check-config`` and the start-up say in one line that the store is newer, and stop."""
    path = tmp_path / "newer.db"
    with sqlite3.connect(path) as connection:
        connection.execute(f"PRAGMA user_version = {sqlite_engine.SCHEMA_VERSION + 1}")
    env = {**os.environ, "MAEVE_DATABASE_URL": f"sqlite:///{path}"}
    command = [str(Path(sys.executable).parent / "maeve-api"), "check-config"]
    checked = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 2
    assert checked.stdout == ""
    [line] = checked.stderr.splitlines()
    assert line.startswith(f"maeve-api: the SQLite database {path} is at schema version")
    process, _ports = start_gunicorn_process(env["MAEVE_DATABASE_URL"], tmp_path / "gunicorn.log", {})
    try:
        assert process.wait(timeout=60) == 2
    finally:
        stop_process(process)
    logged = (tmp_path / "gunicorn.log").read_text()
    assert "newer than this release's" in logged and "Booting worker" not in logged
    assert sqlite_engine.stored_version(path) == sqlite_engine.SCHEMA_VERSION + 1


@pytest.fixture(params=["sqlite", "nx27017"])
def previous_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of the previous release's store, for a service of its own (mongomock has no URL)."""
    if request.param == "sqlite":
        shutil.copy(SQLITE_FIXTURE, tmp_path / "previous.db")
        return f"sqlite:///{tmp_path / 'previous.db'}"
    nx = request.getfixturevalue("nx_server")
    database = f"maeve_upgrade_{uuid.uuid4().hex[:12]}"
    with MongoClient(nx) as client:
        load_mongo_fixture(client, database)
    return f"{nx}/{database}"


@pytest.mark.anyio
async def test_items_staged_by_the_previous_release_are_delivered_to_stations(previous_url, tmp_path):
    """A station connecting to the upgraded store gets what the previous release staged for it, on 2.0.1 and
    1.6, and the outcomes are shown."""
    from tests.ocpp.conftest import connect, eventually, start_service

    service = start_service(previous_url, tmp_path)
    try:
        async with connect(service, "legacy-201", boot=True) as station:
            calls = dict([await station.next_call() for _ in range(3)])
            assert [i["variable"]["name"] for i in calls["SetVariables"]["set_variable_data"]] == ["HeartbeatInterval"]
            assert calls["InstallCertificate"]["certificate_type"] == "V2GRootCertificate"
            assert calls["TriggerMessage"]["requested_message"] == "StatusNotification"
            shown = await eventually(
                lambda: (s := service.get("/cs/legacy-201").json())["trigger"]["status"] == "Accepted" and s
            )
            assert shown["settings"]["OCPPCommCtrlr/HeartbeatInterval"]["status"] == "Accepted"
            assert shown["settings"]["Done/Already"] == {"value": "1", "status": "Accepted"}
            assert shown["certificates"][0]["status"] == "Accepted"
        async with connect(service, "legacy-16", version="1.6", boot=True) as station:
            calls = dict([await station.next_call() for _ in range(2)])
            assert calls["ChangeConfiguration"] == {"key": "HeartbeatInterval", "value": "60"}
            assert calls["TriggerMessage"]["requested_message"] == "BootNotification"
        listed = {s["csId"]: s for s in service.get("/cs").json()}
        assert set(listed) == {"cs001", "legacy-16", "legacy-201"}
    finally:
        service.stop()
