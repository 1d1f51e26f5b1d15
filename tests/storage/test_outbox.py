"""The location push outbox on every engine: enqueue, atomic claims with a lease, completion and retries.

Due times and leases are on the store's clock (MongoDB's, or the one host's for SQLite), so these tests give
durations and wait for them to pass; they are short, so the waits are too.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta

import pytest

from maeve_api.ocpi.registration import token_hash
from maeve_api.storage import _documents as docs
from maeve_api.storage import push_id
from maeve_api.storage.sqlite import SqliteStorage
from maeve_api.storage.sqlite.engine import SCHEMA_1
from tests.conftest import NO_SERVER_CLOCK

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
LATER = T0 + timedelta(seconds=30)
#: A lease that outlasts every test.
LEASE = timedelta(seconds=60)
#: A lease or delay that a test waits out.
SHORT = timedelta(seconds=0.3)
#: How far the store's clock may be from this process's: the store may be a server of its own.
TOLERANCE = timedelta(seconds=1)


def _wait_out(duration: timedelta) -> None:
    time.sleep(duration.total_seconds() + 0.05)


def _near_now(value: datetime, offset: timedelta = timedelta(0)) -> bool:
    """Whether the store's time ``value`` is ``offset`` after now, as far as two clocks can tell."""
    return abs(value - (datetime.now(UTC) + offset)) <= TOLERANCE


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
def test_enqueue_makes_a_due_entry(storage):
    """A new entry is due at once, free, with no attempts."""
    storage.pushes.enqueue("NL*EMS", "loc1")
    entry = storage.pushes.find(push_id("NL*EMS", "loc1"))
    assert entry is not None
    assert {k: entry[k] for k in ("id", "party", "location_id", "attempts")} == {
        "id": "NL*EMS/loc1",
        "party": "NL*EMS",
        "location_id": "loc1",
        "attempts": 0,
    }
    assert _near_now(entry["due_at"])
    assert entry["lease_until"] < entry["due_at"]
    assert "lease" not in entry and "last_error" not in entry
    assert storage.pushes.claim("lease", LEASE)["id"] == "NL*EMS/loc1"


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
def test_values_that_look_like_field_paths_are_kept_as_sent(storage):
    """A location id or error text starting with ``$`` is stored as it is, never read as a field of the entry."""
    storage.pushes.enqueue("NL*EMS", "$party")
    entry = storage.pushes.claim("$lease", LEASE)
    assert (entry["location_id"], entry["lease"]) == ("$party", "$lease")
    storage.pushes.retry(entry["id"], "$lease", entry["revision"], LEASE, "$location_id")
    stored = storage.pushes.find(entry["id"])
    assert (stored["location_id"], stored["last_error"]) == ("$party", "$location_id")


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
def test_claim_takes_the_earliest_due_entry_once(storage):
    """Claims go by due time; a leased entry is not claimed again until its lease ends."""
    storage.pushes.enqueue("NL*EMS", "b-early")
    time.sleep(0.01)
    storage.pushes.enqueue("NL*EMS", "a-late")
    first = storage.pushes.claim("lease-1", SHORT)
    second = storage.pushes.claim("lease-2", LEASE)
    assert (first["location_id"], first["lease"]) == ("b-early", "lease-1")
    assert (second["location_id"], second["lease"]) == ("a-late", "lease-2")
    assert _near_now(first["lease_until"], SHORT) and _near_now(second["lease_until"], LEASE)
    assert storage.pushes.claim("lease-3", LEASE) is None
    _wait_out(SHORT)
    expired = storage.pushes.claim("lease-4", LEASE)
    assert (expired["location_id"], expired["lease"]) == ("b-early", "lease-4")
    assert storage.pushes.claim("lease-5", LEASE) is None


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
def test_complete_removes_the_delivered_revision(storage):
    """Completing the claimed revision removes the entry."""
    storage.pushes.enqueue("NL*EMS", "loc1")
    entry = storage.pushes.claim("lease", LEASE)
    assert storage.pushes.complete(entry["id"], "lease", entry["revision"]) is True
    assert storage.pushes.all() == []


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
def test_a_newer_revision_survives_completion_and_waits_for_the_lease(storage):
    """Enqueueing during a delivery keeps the lease; completing the older revision frees the newer one."""
    storage.pushes.enqueue("NL*EMS", "loc1")
    entry = storage.pushes.claim("lease", LEASE)
    storage.pushes.enqueue("NL*EMS", "loc1")
    assert storage.pushes.claim("other", LEASE) is None
    assert storage.pushes.complete(entry["id"], "lease", entry["revision"]) is False
    again = storage.pushes.claim("other", LEASE)
    assert again is not None and again["revision"] != entry["revision"]


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
def test_retry_counts_the_attempt_and_delays(storage):
    """A failed push is released, due again after the delay, with its attempt and error recorded."""
    storage.pushes.enqueue("NL*EMS", "loc1")
    entry = storage.pushes.claim("lease", LEASE)
    storage.pushes.retry(entry["id"], "lease", entry["revision"], SHORT, "HTTP 503")
    stored = storage.pushes.find(entry["id"])
    assert (stored["attempts"], stored["last_error"]) == (1, "HTTP 503")
    assert _near_now(stored["due_at"], SHORT)
    assert "lease" not in stored
    assert storage.pushes.claim("lease-2", LEASE) is None
    _wait_out(SHORT)
    assert storage.pushes.claim("lease-2", LEASE) is not None


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
def test_a_stale_lease_changes_nothing(storage):
    """complete and retry under a lease that is no longer held leave the entry alone."""
    storage.pushes.enqueue("NL*EMS", "loc1")
    entry = storage.pushes.claim("old", SHORT)
    _wait_out(SHORT)
    taken = storage.pushes.claim("new", LEASE)
    assert storage.pushes.complete(entry["id"], "old", entry["revision"]) is False
    storage.pushes.retry(entry["id"], "old", entry["revision"], LEASE, "late")
    stored = storage.pushes.find(entry["id"])
    assert (stored["lease"], stored["attempts"]) == ("new", 0)
    assert storage.pushes.complete(taken["id"], "new", taken["revision"]) is True


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
def test_a_worker_whose_clock_is_minutes_off_neither_steals_a_live_lease_nor_leaves_an_expired_one(
    storage, storage_engine, monkeypatch
):
    """Leases are compared on the database's clock: a claim from a process whose clock runs 5 minutes ahead
    finds the entry still leased, and one from a process 5 minutes behind takes it as soon as the lease ends."""
    if storage_engine == "sqlite":
        pytest.skip("SQLite serves one host, whose clock every worker sharing the file reads")
    real_now = docs.now
    storage.pushes.enqueue("NL*EMS", "loc1")
    held = storage.pushes.claim("crashed", SHORT)
    monkeypatch.setattr(docs, "now", lambda: real_now() + timedelta(minutes=5))
    assert storage.pushes.claim("ahead", LEASE) is None
    _wait_out(SHORT)
    monkeypatch.setattr(docs, "now", lambda: real_now() - timedelta(minutes=5))
    taken = storage.pushes.claim("behind", LEASE)
    assert taken is not None and (taken["id"], taken["lease"]) == (held["id"], "behind")


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
def test_remove_party_drops_only_its_entries(storage):
    """remove_party empties the outbox of that party only."""
    storage.pushes.enqueue("NL*EMS", "loc1")
    storage.pushes.enqueue("DE*ABC", "loc1")
    storage.pushes.remove_party("NL*EMS")
    assert [entry["id"] for entry in storage.pushes.all()] == ["DE*ABC/loc1"]


def test_a_version_1_sqlite_database_gains_the_outbox_and_keeps_its_data(tmp_path):
    """Opening a database made before the OCPI tables adds them and keeps every existing row."""
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as connection:
        for statement in SCHEMA_1:  # every table of schema 1, as that release created them
            connection.execute(statement)
        connection.execute("INSERT INTO registrations VALUES ('kept', 'REGISTERED')")
        connection.execute("PRAGMA user_version = 1")
    storage = SqliteStorage(path)
    try:
        assert storage.registrations.find(token_hash("kept")) == {
            "token_hash": token_hash("kept"),
            "status": "REGISTERED",
        }
        storage.pushes.enqueue("NL*EMS", "loc1")
        assert [entry["id"] for entry in storage.pushes.all()] == ["NL*EMS/loc1"]
        assert storage.parties.all() == []
    finally:
        storage.close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] >= 2


@pytest.mark.engine_gap(nx27017=NO_SERVER_CLOCK["nx27017"])
def test_waiting_entries_are_counted_per_party_by_the_store(storage):
    """waiting_by_party counts each party's entries, leaving out parties with none."""
    for location_id in ("a", "b", "c"):
        storage.pushes.enqueue("NL*EMS", location_id)
    storage.pushes.enqueue("DE*ABC", "a")
    assert storage.pushes.waiting_by_party() == {"NL*EMS": 3, "DE*ABC": 1}
    storage.pushes.remove_party("NL*EMS")
    assert storage.pushes.waiting_by_party() == {"DE*ABC": 1}


def test_push_results_are_kept_per_party_and_location(storage):
    """record_result replaces the outcome of one (party, location); results lists a location's by party, and
    removing a party drops its results."""
    failed = {
        "party": "NL*EMS",
        "location_id": "loc1",
        "revision": "r1",
        "state": "failed",
        "at": LATER,
        "since": T0,
        "attempts": 3,
        "http_status": 422,
        "status_code": 2001,
        "status_message": "latitude: too long",
        "error": "PUT location: HTTP 422, OCPI status_code 2001",
    }
    storage.pushes.record_result({**failed, "state": "retrying", "attempts": 1})
    storage.pushes.record_result(failed)
    storage.pushes.record_result(
        {"party": "DE*ABC", "location_id": "loc1", "revision": "r9", "state": "delivered", "at": T0}
    )
    storage.pushes.record_result(
        {"party": "DE*ABC", "location_id": "loc2", "revision": "r2", "state": "delivered", "at": T0}
    )
    assert storage.pushes.results("loc1") == [
        {"party": "DE*ABC", "location_id": "loc1", "revision": "r9", "state": "delivered", "at": T0},
        failed,
    ]
    storage.pushes.remove_party("DE*ABC")
    assert storage.pushes.results("loc1") == [failed]
    assert storage.pushes.results("loc2") == []
