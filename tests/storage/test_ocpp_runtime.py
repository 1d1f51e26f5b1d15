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
    storage.ocpp.connect("cs001", "conn-1", "2.0.1", T0)
    first = storage.ocpp.runtime("cs001")
    storage.ocpp.connect("cs001", "conn-2", "1.6", T0 + timedelta(seconds=1))
    second = storage.ocpp.runtime("cs001")
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
    before = datetime.now(UTC) - timedelta(seconds=1)
    storage.charge_stations.merge_settings("cs001", [{"name": "A/B", "value": "1", "status": "Pending"}])
    storage.charge_stations.put_trigger("cs002", {"message": "Heartbeat", "status": "Pending"})
    seen = {c["cs_id"]: c["seq"] for c in storage.ocpp.changes(before)}
    assert set(seen) == {"cs001", "cs002"}
    storage.charge_stations.merge_install_certificates(
        "cs001", [{"certificate_id": "ab", "type": "V2G", "pem": "p", "status": "Pending"}]
    )
    again = {c["cs_id"]: c["seq"] for c in storage.ocpp.changes(before)}
    assert again["cs001"] > seen["cs001"]
    assert storage.ocpp.changes(datetime.now(UTC) + timedelta(seconds=5)) == []


def test_changes_name_the_connection(storage):
    register(storage)
    since = datetime.now(UTC) - timedelta(seconds=1)
    storage.ocpp.connect("cs001", "conn-9", "2.0.1", datetime.now(UTC))
    assert [(c["cs_id"], c.get("connection")) for c in storage.ocpp.changes(since)] == [("cs001", "conn-9")]


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
