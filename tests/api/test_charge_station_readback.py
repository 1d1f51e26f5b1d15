"""Reading back a charge station and the outcome of what was staged for it, through the real app."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.api.conftest import assert_status
from tests.api.test_charge_stations import PASSWORD_HASH, register
from tests.factories import make_certificate_pem


def test_a_registered_station_shows_its_auth_and_staged_items_as_pending(client):
    register(client, base64SHA256Password=PASSWORD_HASH, invalidUsernameAllowed=True)
    client.post("/cs/cs001/reconfigure", json={"A/B": "1", "SecurityCtrlr/BasicAuthPassword": "s3cret-password-1"})
    certificate = {"type": "MO", "certificate": make_certificate_pem()}
    client.post("/cs/cs001/certificates", json={"certificates": [certificate]})
    client.post("/cs/cs001/trigger", json={"trigger": "StatusNotification"})
    response = client.get("/cs/cs001")
    assert response.status_code == 200
    shown = response.json()
    assert "s3cret-password-1" not in response.text and PASSWORD_HASH not in response.text
    assert (shown["securityProfile"], shown["invalidUsernameAllowed"], shown["connected"]) == (1, True, False)
    assert shown["settings"]["A/B"]["value"] == "1"
    assert shown["settings"]["SecurityCtrlr/BasicAuthPassword"]["value"] == "***"
    assert {s["status"] for s in shown["settings"].values()} == {"Pending"}
    assert [(c["type"], c["status"], len(c["id"])) for c in shown["certificates"]] == [("MO", "Pending", 64)]
    assert (shown["trigger"]["message"], shown["trigger"]["status"]) == ("StatusNotification", "Pending")
    assert "bootInfo" not in shown and "ocppVersion" not in shown


def test_outcomes_and_runtime_details_are_shown(client, store):
    register(client)
    client.post("/cs/cs001/reconfigure", json={"A/B": "1"})
    store.ocpp.connect("cs001", "c1", "2.0.1", datetime(2025, 1, 1, tzinfo=UTC))
    store.ocpp.record_boot("cs001", {"vendor": "V", "model": "M"}, datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC))
    revision = store.ocpp.deliveries("cs001")["settings"][0]["revision"]
    store.ocpp.settle("cs001", "setting", "A/B", revision, {"status": "NotSupported", "detail": "UnknownVariable"})
    shown = client.get("/cs/cs001").json()
    assert (shown["connected"], shown["ocppVersion"], shown["bootInfo"]) == (True, "2.0.1", {"vendor": "V",
                                                                                             "model": "M"})
    assert shown["lastBoot"] == "2025-01-01T00:00:01.000Z"
    assert (shown["settings"]["A/B"]["status"], shown["settings"]["A/B"]["detail"]) == ("NotSupported",
                                                                                         "UnknownVariable")


def test_an_unknown_station_is_404(client):
    assert_status(client.get("/cs/nobody"), 404)


def test_the_list_pages_stations_by_id_with_pending_counts(client):
    for cs_id in ("c", "a", "b"):
        register(client, cs_id)
    client.post("/cs/b/reconfigure", json={"A/B": "1"})
    page = client.get("/cs", params={"limit": 2}).json()
    assert page == [{"csId": "a", "connected": False, "pending": 0}, {"csId": "b", "connected": False, "pending": 1}]
    assert [s["csId"] for s in client.get("/cs", params={"offset": 2}).json()] == ["c"]
    assert_status(client.get("/cs", params={"limit": 101}), 400)
    assert_status(client.get("/cs", params={"offset": -1}), 400)
