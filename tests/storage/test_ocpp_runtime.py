"""The OCPP repository on every engine: runtime details, change tracking and delivery outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.storage.conftest import assert_utc

T0 = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
BOOT = {"vendor": "Acme", "model": "Volt", "serial_number": "SN1", "firmware_version": "1.2"}


def register(storage, cs_id="cs001"):
    storage.charge_stations.put_auth(cs_id, {"security_profile": 0, "password_hash": "x" * 43 + "="})


def test_connect_records_version_and_connection_and_bumps_seq(storage):
    register(storage)
    first = storage.ocpp.connect("cs001", "conn-1", "2.0.1", T0)
    assert first == storage.ocpp.runtime("cs001")
    second = storage.ocpp.connect("cs001", "conn-2", "1.6", T0 + timedelta(seconds=1))
    assert second == storage.ocpp.runtime("cs001")
    assert (first["connection"], first["ocpp_version"], first["last_seen"]) == ("conn-1", "2.0.1", T0)
    assert (second["connection"], second["ocpp_version"]) == ("conn-2", "1.6")
    assert second["seq"] > first["seq"]
    assert_utc(second["changed_at"])


def test_disconnect_forgets_only_the_current_connection(storage):
    register(storage)
    storage.ocpp.connect("cs001", "conn-1", "2.0.1", T0)
    storage.ocpp.connect("cs001", "conn-2", "2.0.1", T0)
    assert storage.ocpp.disconnect("cs001", "conn-1", T0) is False
    assert storage.ocpp.runtime("cs001")["connection"] == "conn-2"
    assert storage.ocpp.disconnect("cs001", "conn-2", T0) is True
    assert "connection" not in storage.ocpp.runtime("cs001")


def test_record_boot_stores_details_and_applies_reboot_required_settings(storage):
    register(storage)
    storage.charge_stations.merge_settings("cs001", [{"name": "A/B", "value": "1", "status": "Pending"}])
    item = storage.ocpp.deliveries("cs001")["settings"][0]
    assert storage.ocpp.settle("cs001", "setting", "A/B", item["revision"], {"status": "RebootRequired"})
    storage.ocpp.record_boot("cs001", BOOT, T0)
    runtime = storage.ocpp.runtime("cs001")
    assert {k: runtime[k] for k in BOOT} == BOOT
    assert runtime["last_boot"] == runtime["last_seen"] == T0
    assert storage.ocpp.deliveries("cs001")["settings"][0]["status"] == "Accepted"


def test_touch_sets_last_seen(storage):
    register(storage)
    storage.ocpp.connect("cs001", "c", "2.0.1", T0)
    storage.ocpp.touch("cs001", T0 + timedelta(seconds=5))
    assert storage.ocpp.runtime("cs001")["last_seen"] == T0 + timedelta(seconds=5)


def test_runtime_of_an_unknown_station_is_none(storage):
    assert storage.ocpp.runtime("nobody") is None


def test_staging_is_a_change_seen_by_changes(storage):
    register(storage)
    register(storage, "cs002")
    nothing, cursor = storage.ocpp.changes(None)
    assert nothing == []
    storage.charge_stations.merge_settings("cs001", [{"name": "A/B", "value": "1", "status": "Pending"}])
    storage.charge_stations.put_trigger("cs002", {"message": "Heartbeat", "status": "Pending"})
    found, cursor = storage.ocpp.changes(cursor)
    seen = {c["cs_id"]: c["seq"] for c in found}
    assert set(seen) == {"cs001", "cs002"}
    storage.charge_stations.merge_install_certificates(
        "cs001", [{"certificate_id": "ab", "type": "V2G", "pem": "p", "status": "Pending"}]
    )
    again, cursor = storage.ocpp.changes(cursor)
    assert [c["cs_id"] for c in again] == ["cs001"]
    assert again[0]["seq"] > seen["cs001"]
    assert storage.ocpp.changes(cursor)[0] == []


def test_a_cursor_taken_now_sees_nothing_staged_before(storage):
    register(storage)
    storage.charge_stations.merge_settings("cs001", [{"name": "A/B", "value": "1", "status": "Pending"}])
    _nothing, cursor = storage.ocpp.changes(None)
    assert storage.ocpp.changes(cursor)[0] == []


def test_changes_name_the_connection(storage):
    register(storage)
    _nothing, cursor = storage.ocpp.changes(None)
    runtime = storage.ocpp.connect("cs001", "conn-9", "2.0.1", T0)
    assert (runtime["connection"], runtime["seq"], runtime["last_seen"]) == ("conn-9", 1, T0)
    assert [(c["cs_id"], c.get("connection")) for c in storage.ocpp.changes(cursor)[0]] == [("cs001", "conn-9")]


def test_a_station_changed_twice_between_polls_is_returned_once_in_its_latest_state(storage):
    register(storage)
    _nothing, cursor = storage.ocpp.changes(None)
    storage.charge_stations.merge_settings("cs001", [{"name": "A/B", "value": "1", "status": "Pending"}])
    storage.ocpp.connect("cs001", "conn-2", "2.0.1", T0)
    found, cursor = storage.ocpp.changes(cursor)
    assert [(c["cs_id"], c["seq"], c.get("connection")) for c in found] == [("cs001", 2, "conn-2")]
    # The first change's number was overwritten before any poll saw it: MongoDB's cursor asks again for it a
    # while, and may return the station again, as it is; nothing newer.
    assert all((c["cs_id"], c["seq"]) == ("cs001", 2) for c in storage.ocpp.changes(cursor)[0])


def test_touch_many_sets_last_seen_of_each(storage):
    for cs_id in ("a", "b"):
        register(storage, cs_id)
        storage.ocpp.connect(cs_id, "c", "2.0.1", T0)
    storage.ocpp.touch_many({"a": T0 + timedelta(seconds=1), "b": T0 + timedelta(seconds=2)})
    storage.ocpp.touch_many({})
    assert storage.ocpp.runtime("a")["last_seen"] == T0 + timedelta(seconds=1)
    assert storage.ocpp.runtime("b")["last_seen"] == T0 + timedelta(seconds=2)


def test_deliveries_of_several_stations_in_one_call(storage):
    for cs_id in ("a", "b", "c"):
        register(storage, cs_id)
    storage.charge_stations.merge_settings("a", [{"name": "X/Z", "value": "2", "status": "Pending"},
                                                 {"name": "X/Y", "value": "1", "status": "Pending"}])
    storage.charge_stations.put_trigger("b", {"message": "Heartbeat", "status": "Pending"})
    storage.charge_stations.merge_install_certificates(
        "b", [{"certificate_id": "1", "type": "V2G", "pem": "p", "status": "Pending"}]
    )
    found = storage.ocpp.deliveries_of(["a", "b", "c", "unknown"])
    assert found == {cs_id: storage.ocpp.deliveries(cs_id) for cs_id in ("a", "b", "c", "unknown")}
    assert [s["name"] for s in found["a"]["settings"]] == ["X/Y", "X/Z"]
    assert (found["a"]["certificates"], found["a"]["trigger"]) == ([], None)
    assert found["b"]["trigger"]["message"] == "Heartbeat"
    assert [c["certificate_id"] for c in found["b"]["certificates"]] == ["1"]
    assert found["c"] == found["unknown"] == {"settings": [], "certificates": [], "trigger": None}
    assert storage.ocpp.deliveries_of([]) == {}


@pytest.mark.parametrize("kind", ["setting", "certificate", "trigger"])
def test_settle_updates_only_the_revision_it_names(storage, kind):
    register(storage)

    def stage():
        if kind == "setting":
            storage.charge_stations.merge_settings("cs001", [{"name": "A/B", "value": "1", "status": "Pending"}])
        elif kind == "certificate":
            storage.charge_stations.merge_install_certificates(
                "cs001", [{"certificate_id": "A/B", "type": "V2G", "pem": "p", "status": "Pending"}]
            )
        else:
            storage.charge_stations.put_trigger("cs001", {"message": "A/B", "status": "Pending"})

    def item():
        found = storage.ocpp.deliveries("cs001")
        return found["trigger"] if kind == "trigger" else found[f"{kind}s"][0]

    stage()
    first = item()
    assert (first["status"], first["attempts"], first["due_at"]) == ("Pending", 0, datetime.fromtimestamp(0, UTC))
    due = T0 + timedelta(seconds=2)
    assert storage.ocpp.settle("cs001", kind, "A/B", first["revision"], {"attempts": 1, "due_at": due, "detail": "t"})
    retried = item()
    assert (retried["attempts"], retried["due_at"], retried["detail"]) == (1, due, "t")
    stage()
    restaged = item()
    assert restaged["revision"] != first["revision"]
    assert (restaged["attempts"], "detail" in restaged) == (0, False)
    assert not storage.ocpp.settle("cs001", kind, "A/B", first["revision"], {"status": "Rejected"})
    assert item()["status"] == "Pending"
    assert storage.ocpp.settle(
        "cs001", kind, "A/B", restaged["revision"], {"status": "NotSupported", "detail": "UnknownVariable",
                                                     "updated_at": T0}
    )
    final = item()
    assert (final["status"], final["detail"], final["updated_at"]) == ("NotSupported", "UnknownVariable", T0)
    assert storage.ocpp.settle("cs001", kind, "A/B", restaged["revision"], {"detail": None})
    assert "detail" not in item()


def test_set_password_hash_keeps_the_rest_of_the_auth(storage):
    storage.charge_stations.put_auth("cs001", {"security_profile": 1, "invalid_username_allowed": True})
    storage.ocpp.set_password_hash("cs001", "h" * 43 + "=")
    assert storage.charge_stations.find_auth("cs001") == {
        "security_profile": 1,
        "password_hash": "h" * 43 + "=",
        "invalid_username_allowed": True,
    }


def test_stations_pages_by_cs_id_with_pending_counts(storage):
    for cs_id in ("b", "a", "c"):
        register(storage, cs_id)
    storage.charge_stations.merge_settings(
        "b", [{"name": "X/Y", "value": "1", "status": "Pending"}, {"name": "X/Z", "value": "1", "status": "Pending"}]
    )
    storage.charge_stations.put_trigger("b", {"message": "Heartbeat", "status": "Pending"})
    storage.charge_stations.merge_install_certificates(
        "b", [{"certificate_id": "1", "type": "V2G", "pem": "p", "status": "Accepted"}]
    )
    storage.ocpp.connect("a", "conn", "1.6", T0)
    page = storage.ocpp.stations(0, 2)
    assert page == [
        {"cs_id": "a", "connected": True, "ocpp_version": "1.6", "last_seen": T0, "pending": 0},
        {"cs_id": "b", "connected": False, "pending": 3},
    ]
    assert [s["cs_id"] for s in storage.ocpp.stations(2, 10)] == ["c"]
    assert storage.ocpp.stations(0, 0) == []


def test_transaction_ids_are_never_repeated(storage):
    ids = [storage.ocpp.next_transaction_id() for _ in range(5)]
    assert len(set(ids)) == 5
    assert all(1 <= i <= 2**31 - 1 for i in ids)


def test_a_change_that_lands_after_a_later_one_is_still_seen(storage, storage_engine):
    """On MongoDB a change takes its number, then lands on its station: another change can take the next number
    and land first. The earlier one must still be seen when it lands."""
    if storage_engine == "sqlite":
        pytest.skip("SQLite numbers a change inside its own transaction: changes commit in the order of their numbers")
    from maeve_api.storage.mongo.charge_stations import next_change

    register(storage, "early")
    register(storage, "late")
    _nothing, cursor = storage.ocpp.changes(None)
    number = next_change(storage.ocpp._db)  # "early" takes its number, and is slow to land
    storage.charge_stations.merge_settings("late", [{"name": "A/B", "value": "1", "status": "Pending"}])
    found, cursor = storage.ocpp.changes(cursor)
    assert [c["cs_id"] for c in found] == ["late"]
    storage.ocpp._db.collection("charge_station_runtime").update_one(
        {"_id": "early"}, {"$inc": {"seq": 1}, "$set": {"changed_at": 0, "change_seq": number}}, upsert=True
    )
    found, cursor = storage.ocpp.changes(cursor)
    assert ("early", 1) in [(c["cs_id"], c["seq"]) for c in found]
    assert {(c["cs_id"], c["seq"]) for c in found} <= {("early", 1), ("late", 1)}  # "late" again, as it was
    assert storage.ocpp.changes(cursor)[0] == []
