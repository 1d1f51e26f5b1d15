"""The location push outbox on every engine: enqueue, atomic claims with a lease, completion and retries."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from maeve_api.ocpi.registration import token_hash
from maeve_api.storage import push_id
from maeve_api.storage.sqlite import SqliteStorage
from maeve_api.storage.sqlite.engine import SCHEMA_1

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
LATER = T0 + timedelta(seconds=30)


def test_enqueue_makes_a_due_entry(storage):
    """A new entry is due at once, free, with no attempts."""
    storage.pushes.enqueue("NL*EMS", "loc1", T0)
    entry = storage.pushes.find(push_id("NL*EMS", "loc1"))
    assert entry is not None
    assert {k: entry[k] for k in ("id", "party", "location_id", "attempts", "due_at")} == {
        "id": "NL*EMS/loc1",
        "party": "NL*EMS",
        "location_id": "loc1",
        "attempts": 0,
        "due_at": T0,
    }
    assert entry["lease_until"] < T0
    assert "lease" not in entry and "last_error" not in entry


def test_claim_takes_the_earliest_due_entry_once(storage):
    """Claims go by due time; a leased entry is not claimed again until its lease ends."""
    storage.pushes.enqueue("NL*EMS", "late", T0 + timedelta(seconds=1))
    storage.pushes.enqueue("NL*EMS", "early", T0)
    first = storage.pushes.claim(LATER, LATER + timedelta(seconds=60), "lease-1")
    second = storage.pushes.claim(LATER, LATER + timedelta(seconds=60), "lease-2")
    assert (first["location_id"], first["lease"]) == ("early", "lease-1")
    assert (second["location_id"], second["lease"]) == ("late", "lease-2")
    assert storage.pushes.claim(LATER, LATER + timedelta(seconds=60), "lease-3") is None
    expired = storage.pushes.claim(LATER + timedelta(seconds=61), LATER + timedelta(seconds=120), "lease-4")
    assert expired is not None and expired["lease"] == "lease-4"


def test_entries_not_yet_due_are_not_claimed(storage):
    """An entry due in the future stays in the outbox."""
    storage.pushes.enqueue("NL*EMS", "loc1", LATER)
    assert storage.pushes.claim(T0, T0 + timedelta(seconds=60), "lease") is None


def test_complete_removes_the_delivered_revision(storage):
    """Completing the claimed revision removes the entry."""
    storage.pushes.enqueue("NL*EMS", "loc1", T0)
    entry = storage.pushes.claim(T0, LATER, "lease")
    assert storage.pushes.complete(entry["id"], "lease", entry["revision"]) is True
    assert storage.pushes.all() == []


def test_a_newer_revision_survives_completion_and_waits_for_the_lease(storage):
    """Enqueueing during a delivery keeps the lease; completing the older revision frees the newer one."""
    storage.pushes.enqueue("NL*EMS", "loc1", T0)
    entry = storage.pushes.claim(T0, LATER, "lease")
    storage.pushes.enqueue("NL*EMS", "loc1", T0)
    assert storage.pushes.claim(T0, LATER, "other") is None
    assert storage.pushes.complete(entry["id"], "lease", entry["revision"]) is False
    again = storage.pushes.claim(T0, LATER, "other")
    assert again is not None and again["revision"] != entry["revision"]


def test_retry_counts_the_attempt_and_delays(storage):
    """A failed push is released, due again later, with its attempt and error recorded."""
    storage.pushes.enqueue("NL*EMS", "loc1", T0)
    entry = storage.pushes.claim(T0, LATER, "lease")
    storage.pushes.retry(entry["id"], "lease", entry["revision"], T0 + timedelta(seconds=4), "HTTP 503")
    stored = storage.pushes.find(entry["id"])
    assert (stored["attempts"], stored["due_at"], stored["last_error"]) == (1, T0 + timedelta(seconds=4), "HTTP 503")
    assert "lease" not in stored
    assert storage.pushes.claim(T0, LATER, "lease-2") is None
    assert storage.pushes.claim(T0 + timedelta(seconds=4), LATER, "lease-2") is not None


def test_a_stale_lease_changes_nothing(storage):
    """complete and retry under a lease that is no longer held leave the entry alone."""
    storage.pushes.enqueue("NL*EMS", "loc1", T0)
    entry = storage.pushes.claim(T0, T0 + timedelta(seconds=1), "old")
    taken = storage.pushes.claim(T0 + timedelta(seconds=2), LATER, "new")
    assert storage.pushes.complete(entry["id"], "old", entry["revision"]) is False
    storage.pushes.retry(entry["id"], "old", entry["revision"], LATER, "late")
    stored = storage.pushes.find(entry["id"])
    assert (stored["lease"], stored["attempts"]) == ("new", 0)
    assert storage.pushes.complete(taken["id"], "new", taken["revision"]) is True


def test_remove_party_drops_only_its_entries(storage):
    """remove_party empties the outbox of that party only."""
    storage.pushes.enqueue("NL*EMS", "loc1", T0)
    storage.pushes.enqueue("DE*ABC", "loc1", T0)
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
        storage.pushes.enqueue("NL*EMS", "loc1", T0)
        assert [entry["id"] for entry in storage.pushes.all()] == ["NL*EMS/loc1"]
        assert storage.parties.all() == []
    finally:
        storage.close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] >= 2


def test_waiting_entries_are_counted_per_party_by_the_store(storage):
    """waiting_by_party counts each party's entries, leaving out parties with none."""
    for location_id in ("a", "b", "c"):
        storage.pushes.enqueue("NL*EMS", location_id, T0)
    storage.pushes.enqueue("DE*ABC", "a", T0)
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
