"""A database written by the previous release (64d0397) keeps working: its locations, parties, registrations
and queued pushes are read, listed, published and delivered by this one.

The data was written by that release's code with ``make_previous_release_data.py``.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import mongomock_ng as mongomock
import pytest
from bson import json_util

from maeve_api.ocpi.locations import location_page, location_state
from maeve_api.ocpi.parties import list_parties
from maeve_api.ocpi.publisher import Publisher
from maeve_api.settings import Settings
from maeve_api.storage.mongo import MongoStorage
from maeve_api.storage.sqlite import SCHEMA_VERSION, SqliteStorage
from tests.conftest import NO_SERVER_CLOCK

DATA = Path(__file__).parent / "data"
LATER = datetime(2026, 11, 24, 12, 5, tzinfo=UTC)


class RecordingClient:
    """Stands for the partner client: records the pushes a publisher makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []

    def call(self, step, method, url, token, encoding, body=None, routing=None, correlation_id=None, deadline=None):
        self.calls.append((method, url, body))
        return None

    def close(self) -> None:
        pass


@pytest.fixture(params=["sqlite", "mongomock", "nx27017", "mongoeco"])
def previous(request, tmp_path):
    """The previous release's data, opened by this release on each engine."""
    if request.param == "sqlite":
        shutil.copy(DATA / "previous.db", tmp_path / "previous.db")
        storage = SqliteStorage(tmp_path / "previous.db")
    else:
        if request.param == "mongomock":
            client = mongomock.MongoClient(tz_aware=True, tzinfo=UTC)
            database = "maeve"
        else:
            client = request.getfixturevalue("nx_client" if request.param == "nx27017" else "mongoeco_client")
            database = f"maeve_upgrade_{uuid.uuid4().hex[:12]}"
            request.addfinalizer(lambda: client.drop_database(database))
        dump = json_util.loads((DATA / "previous-mongo.json").read_text())
        for name, documents in dump.items():
            client[database].create_collection(name)
            if documents:
                client[database][name].insert_many(documents)
        storage = MongoStorage(client, database)
    yield storage
    storage.close()


def test_the_sqlite_schema_is_brought_up_to_date_in_place(tmp_path):
    """Opening the file adds what this release needs and marks its version; the rows are kept."""
    shutil.copy(DATA / "previous.db", tmp_path / "previous.db")
    with sqlite3.connect(tmp_path / "previous.db") as before:
        assert before.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION
        kept = before.execute("SELECT * FROM location_pushes ORDER BY id").fetchall()
    SqliteStorage(tmp_path / "previous.db").close()
    with sqlite3.connect(tmp_path / "previous.db") as after:
        assert after.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert after.execute("SELECT * FROM location_pushes ORDER BY id").fetchall() == kept


def test_previous_data_is_read_and_listed(previous):
    """Stored locations page and count in the store, read back with their queued pushes, and parties and
    registrations are listed."""
    settings = Settings()
    page, total = location_page(previous, settings, 0, 10)
    assert total == 2 and [location["id"] for location in page] == ["loc1", "loc2"]
    assert previous.locations.count(date_from=datetime(2000, 1, 1, tzinfo=UTC)) == 2
    state = location_state(previous, "loc1")
    assert state["location"]["name"] == "Gridlink"
    [publication] = state["publications"]
    assert (publication["party"], publication["state"], publication["attempts"]) == ("NL*EMS", "pending", 1)
    assert previous.pushes.waiting_by_party() == {"NL*EMS": 2}
    listed = list_parties(previous, 0, 10)
    assert [(item["kind"], item["status"]) for item in listed] == [
        ("party", "REGISTERED"),
        ("registration", "PENDING"),
        ("registration", "REGISTERED"),
    ]
    assert listed[0]["last_push"]["ok"] is False
    assert previous.tokens.get("DEADBEEF")["contract_id"] == "GBTWK012345678V"


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
def test_queued_pushes_of_the_previous_release_are_delivered(previous):
    """The outbox entries the previous release left (one retried already) are claimed, sent and completed, and
    their delivery is recorded."""
    client = RecordingClient()
    publisher = Publisher(previous, Settings(), client=client, clock=lambda: LATER)  # type: ignore[arg-type]
    assert publisher.deliver_due() == 2
    assert sorted(url.rsplit("/", 1)[1] for _method, url, _body in client.calls) == ["loc1", "loc2"]
    assert previous.pushes.all() == []
    [delivered] = previous.pushes.results("loc1")
    assert delivered["state"] == "delivered"
    assert location_state(previous, "loc1")["publications"][0]["state"] == "delivered"
    previous.pushes.enqueue("NL*EMS", "loc1")
    assert previous.pushes.waiting_by_party() == {"NL*EMS": 1}
