"""Delivery of what the API stages, and the outcome of each item, with stations of both versions."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.factories import make_certificate_pem
from tests.ocpp.conftest import PASSWORD, connect, eventually, password_hash

pytestmark = pytest.mark.anyio


def shown(service, cs_id):
    response = service.get(f"/cs/{cs_id}")
    assert response.status_code == 200
    return response.json()


def settled_settings(service, cs_id):
    """The station's settings once none is Pending, else None."""
    settings = shown(service, cs_id)["settings"]
    return settings if all(v["status"] != "Pending" for v in settings.values()) else None


def setting_status(service, cs_id, name):
    return shown(service, cs_id)["settings"][name]["status"]


async def test_settings_staged_before_the_boot_are_sent_after_it_and_outcomes_stored(service):
    cs_id = service.register()
    settings = {
        "OCPPCommCtrlr/HeartbeatInterval": "300",
        "TxCtrlr;main;2/EVConnectionTimeOut;x;Target": "60",
        "Nope/Rejected": "1",
        "Unknown/Variable": "1",
        "not a name": "1",
    }
    assert service.post(f"/cs/{cs_id}/reconfigure", settings).status_code == 200
    async with connect(service, cs_id) as station:
        station.statuses = {"Nope/Rejected": "Rejected", "Unknown/Variable": "UnknownVariable"}
        await station.no_call(0.3)  # nothing before the station boots
        await station.boot()
        _, payload = await station.next_call("SetVariables")
        sent = {(i["component"]["name"], i["variable"]["name"]): i for i in payload["set_variable_data"]}
        assert len(sent) == 4
        tx = sent[("TxCtrlr", "EVConnectionTimeOut")]
        assert tx["component"] == {"name": "TxCtrlr", "instance": "main", "evse": {"id": 2}}
        assert tx["variable"] == {"name": "EVConnectionTimeOut", "instance": "x"}
        assert tx["attribute_type"] == "Target"
        final = await eventually(lambda: settled_settings(service, cs_id))
    assert final["OCPPCommCtrlr/HeartbeatInterval"]["status"] == "Accepted"
    assert final["Nope/Rejected"]["status"] == "Rejected"
    assert (final["Unknown/Variable"]["status"], final["Unknown/Variable"]["detail"]) == (
        "NotSupported", "UnknownVariable")
    assert final["not a name"]["status"] == "Rejected" and final["not a name"]["detail"]
    assert all("updated" in v for v in final.values())


async def test_final_outcomes_are_not_sent_again_and_restaging_sends_again(service):
    cs_id = service.register()
    service.post(f"/cs/{cs_id}/reconfigure", {"A/B": "1"})
    async with connect(service, cs_id, boot=True) as station:
        await station.next_call("SetVariables")
        await eventually(lambda: setting_status(service, cs_id, "A/B") == "Accepted")
    async with connect(service, cs_id, boot=True) as station:
        await station.no_call(0.5)
        service.post(f"/cs/{cs_id}/reconfigure", {"A/B": "2"})
        _, payload = await station.next_call("SetVariables")
        assert payload["set_variable_data"][0]["attribute_value"] == "2"


async def test_staging_while_connected_is_delivered_within_a_second_whichever_worker_answers(service):
    cs_id = service.register()
    async with connect(service, cs_id, boot=True) as station:
        for n in range(6):  # each request on a new connection: they land on both workers
            started = time.monotonic()
            assert service.post(f"/cs/{cs_id}/reconfigure", {"Comp/Var": str(n)}).status_code == 200
            answered = time.monotonic()
            _, payload = await station.next_call("SetVariables", timeout=3)
            assert payload["set_variable_data"][0]["attribute_value"] == str(n)
            assert time.monotonic() - answered < 1.0, f"delivered {time.monotonic() - started:.3f} s after staging"


async def test_staging_from_another_process_is_delivered_within_a_second(service, store):
    """A change written to the store by a process that serves no station (this test's) reaches the station."""
    cs_id = service.register()
    async with connect(service, cs_id, boot=True) as station:
        for n in range(3):
            await asyncio.to_thread(
                store.charge_stations.merge_settings, cs_id, [{"name": "Other/Process", "value": str(n),
                                                                "status": "Pending"}]
            )
            written = time.monotonic()
            _, payload = await station.next_call("SetVariables", timeout=3)
            assert payload["set_variable_data"][0]["attribute_value"] == str(n)
            assert time.monotonic() - written < 1.0


async def test_reboot_required_settings_get_a_reset_and_are_accepted_after_the_next_boot(service):
    cs_id = service.register()
    service.post(f"/cs/{cs_id}/reconfigure", {"A/Reboot": "1", "A/Now": "2"})
    async with connect(service, cs_id) as station:
        station.statuses = {"A/Reboot": "RebootRequired"}
        await station.boot()
        await station.next_call("SetVariables")
        _, reset = await station.next_call("Reset")
        assert reset["type"] == "OnIdle"
        assert setting_status(service, cs_id, "A/Reboot") == "RebootRequired"
        await station.no_call(0.4)  # one Reset, not one per pass
        await station.boot()
        await eventually(lambda: setting_status(service, cs_id, "A/Reboot") == "Accepted")


async def test_1_6_change_configuration_per_key_with_limits_and_soft_reset(service):
    cs_id = service.register()
    service.post(f"/cs/{cs_id}/reconfigure", {"HeartbeatInterval": "60", "MeterValueSampleInterval": "10",
                                                 "K" * 51: "1", "Long": "v" * 501})
    async with connect(service, cs_id, version="1.6") as station:
        station.statuses = {"MeterValueSampleInterval": "RebootRequired"}
        await station.boot()
        keys = {(await station.next_call("ChangeConfiguration"))[1]["key"] for _ in range(2)}
        assert keys == {"HeartbeatInterval", "MeterValueSampleInterval"}
        _, reset = await station.next_call("Reset")
        assert reset["type"] == "Soft"
        settings = shown(service, cs_id)["settings"]
        assert settings["K" * 51]["status"] == "Rejected" and "50" in settings["K" * 51]["detail"]
        assert settings["Long"]["status"] == "Rejected" and "500" in settings["Long"]["detail"]
        await station.boot()
        await eventually(lambda: setting_status(service, cs_id, "MeterValueSampleInterval") == "Accepted")


async def test_a_station_password_setting_is_secret_and_becomes_the_stored_hash(service, store):
    cs_id = service.register()
    new_password = "a-new-password-of-some-length"
    service.post(f"/cs/{cs_id}/reconfigure", {"SecurityCtrlr/BasicAuthPassword": new_password})
    async with connect(service, cs_id, boot=True) as station:
        _, payload = await station.next_call("SetVariables")
        assert payload["set_variable_data"][0]["attribute_value"] == new_password
        await eventually(lambda: setting_status(service, cs_id, "SecurityCtrlr/BasicAuthPassword") == "Accepted")
    assert shown(service, cs_id)["settings"]["SecurityCtrlr/BasicAuthPassword"]["value"] == "***"
    assert store.charge_stations.find_auth(cs_id)["password_hash"] == password_hash(new_password)
    async with connect(service, cs_id, new_password):
        pass
    assert new_password not in service.log.read_text(errors="replace")
    assert PASSWORD not in service.log.read_text(errors="replace")
    assert password_hash(new_password) not in service.log.read_text(errors="replace")


async def test_1_6_authorization_key_is_secret(service, store):
    cs_id = service.register()
    key = "0123456789abcdef0123"
    service.post(f"/cs/{cs_id}/reconfigure", {"AuthorizationKey": key})
    async with connect(service, cs_id, version="1.6", boot=True) as station:
        await station.next_call("ChangeConfiguration")
        await eventually(lambda: setting_status(service, cs_id, "AuthorizationKey") == "Accepted")
    assert shown(service, cs_id)["settings"]["AuthorizationKey"]["value"] == "***"
    assert store.charge_stations.find_auth(cs_id)["password_hash"] == password_hash(key)
    assert key not in service.log.read_text(errors="replace")


async def test_call_errors_are_retried_then_failed(service):
    cs_id = service.register()
    service.post(f"/cs/{cs_id}/reconfigure", {"A/B": "1"})
    async with connect(service, cs_id) as station:
        station.behaviour["SetVariables"] = "error"
        await station.boot()
        for _ in range(3):
            await station.next_call("SetVariables")
        final = await eventually(lambda: (s := shown(service, cs_id)["settings"]["A/B"])["status"] == "Failed" and s)
        assert "InternalError" in final["detail"]
        await station.no_call(0.5)


async def test_a_station_that_does_not_answer_gets_retries_then_failed(service):
    cs_id = service.register()
    service.post(f"/cs/{cs_id}/trigger", {"trigger": "StatusNotification"})
    async with connect(service, cs_id) as station:
        station.behaviour["TriggerMessage"] = "silent"
        await station.boot()
        for _ in range(3):
            await station.next_call("TriggerMessage", timeout=8)
        final = await eventually(lambda: (t := shown(service, cs_id)["trigger"])["status"] == "Failed" and t, 8)
        assert "no answer" in final["detail"]


async def test_reconnecting_mid_delivery_delivers_again(service):
    cs_id = service.register()
    service.post(f"/cs/{cs_id}/trigger", {"trigger": "BootNotification"})
    async with connect(service, cs_id) as station:
        station.behaviour["TriggerMessage"] = "silent"
        await station.boot()
        await station.next_call("TriggerMessage")
    # Gone before answering: the trigger is still Pending and the next connection gets it.
    assert shown(service, cs_id)["trigger"]["status"] == "Pending"
    async with connect(service, cs_id, boot=False) as station:
        await station.next_call("TriggerMessage")
        await eventually(lambda: shown(service, cs_id)["trigger"]["status"] == "Accepted")


async def test_a_setting_staged_again_while_in_flight_keeps_the_newer_value_pending(service):
    cs_id = service.register()
    service.post(f"/cs/{cs_id}/reconfigure", {"A/B": "old"})
    async with connect(service, cs_id) as station:
        station.behaviour["SetVariables"] = "silent"
        await station.boot()
        await station.next_call("SetVariables")
        service.post(f"/cs/{cs_id}/reconfigure", {"A/B": "new"})
        station.behaviour.pop("SetVariables")
        # The late answer for "old" must not settle "new"; "new" is sent and then Accepted.
        while True:
            _, payload = await station.next_call("SetVariables", timeout=5)
            if payload["set_variable_data"][0]["attribute_value"] == "new":
                break
        await eventually(lambda: (s := shown(service, cs_id)["settings"]["A/B"])["status"] == "Accepted"
                         and s["value"] == "new")


@pytest.mark.parametrize(("kind", "expected"), [("V2G", "V2GRootCertificate"), ("MO", "MORootCertificate"),
                                                ("CSMS", "CSMSRootCertificate"), ("MF", "ManufacturerRootCertificate")])
async def test_2_0_1_certificates_are_installed_by_type(service, kind, expected):
    cs_id = service.register()
    pem = make_certificate_pem(f"root-{kind}")
    service.post(f"/cs/{cs_id}/certificates", {"certificates": [{"type": kind, "certificate": pem}]})
    async with connect(service, cs_id, boot=True) as station:
        _, payload = await station.next_call("InstallCertificate")
        assert payload["certificate_type"] == expected
        assert payload["certificate"] == pem
        certificates = await eventually(
            lambda: (c := shown(service, cs_id)["certificates"]) and c[0]["status"] == "Accepted" and c)
    assert certificates[0]["type"] == kind


async def test_a_rejected_certificate_is_final_and_failed_ones_are_retried(service):
    cs_id = service.register()
    service.post(f"/cs/{cs_id}/certificates", {"certificates": [
        {"type": "V2G", "certificate": make_certificate_pem("reject-me")}]})
    async with connect(service, cs_id) as station:
        station.behaviour["InstallCertificate"] = "Rejected"
        await station.boot()
        await station.next_call("InstallCertificate")
        await eventually(lambda: shown(service, cs_id)["certificates"][0]["status"] == "Rejected")
        await station.no_call(0.4)
        station.behaviour["InstallCertificate"] = "Failed"
        service.post(f"/cs/{cs_id}/certificates", {"certificates": [
            {"type": "MO", "certificate": make_certificate_pem("fail-me")}]})
        for _ in range(3):
            await station.next_call("InstallCertificate")
        await eventually(lambda: "Failed" in {c["status"] for c in shown(service, cs_id)["certificates"]})


async def test_1_6_certificates_go_native_or_through_the_iso15118_data_transfer(service):
    cs_id = service.register()
    csms, v2g = make_certificate_pem("csms-16"), make_certificate_pem("v2g-16")
    service.post(f"/cs/{cs_id}/certificates", {"certificates": [
        {"type": "CSMS", "certificate": csms}, {"type": "V2G", "certificate": v2g}]})
    async with connect(service, cs_id, version="1.6", boot=True) as station:
        calls = dict([await station.next_call(), await station.next_call()])
        native, wrapped = calls["InstallCertificate"], calls["DataTransfer"]
        assert (native["certificate_type"], native["certificate"]) == ("CentralSystemRootCertificate", csms)
        assert (wrapped["vendor_id"], wrapped["message_id"]) == ("org.openchargealliance.iso15118pnc",
                                                                 "InstallCertificate")
        assert json.loads(wrapped["data"]) == {"certificateType": "V2GRootCertificate", "certificate": v2g}
        await eventually(lambda: {c["status"] for c in shown(service, cs_id)["certificates"]} == {"Accepted"})


@pytest.mark.parametrize(("answer", "stored"), [("Accepted", "Accepted"), ("Rejected", "Rejected"),
                                                ("NotImplemented", "NotImplemented")])
async def test_2_0_1_trigger_outcomes(service, answer, stored):
    cs_id = service.register()
    service.post(f"/cs/{cs_id}/trigger", {"trigger": "SignChargingStationCertificate"})
    async with connect(service, cs_id) as station:
        station.behaviour["TriggerMessage"] = answer
        await station.boot()
        _, payload = await station.next_call("TriggerMessage")
        assert payload["requested_message"] == "SignChargingStationCertificate"
        await eventually(lambda: shown(service, cs_id)["trigger"]["status"] == stored)
        await station.no_call(0.4)


async def test_1_6_triggers_native_and_sign_ones_through_data_transfer(service):
    cs_id = service.register()
    service.post(f"/cs/{cs_id}/trigger", {"trigger": "StatusNotification"})
    async with connect(service, cs_id, version="1.6", boot=True) as station:
        _, payload = await station.next_call("TriggerMessage")
        assert payload["requested_message"] == "StatusNotification"
        await eventually(lambda: shown(service, cs_id)["trigger"]["status"] == "Accepted")
        station.data_transfer_answer = ("UnknownVendorId", None)
        service.post(f"/cs/{cs_id}/trigger", {"trigger": "SignV2GCertificate"})
        _, wrapped = await station.next_call("DataTransfer")
        assert (wrapped["message_id"], json.loads(wrapped["data"])) == ("TriggerMessage",
                                                                        {"requestedMessage": "SignV2GCertificate"})
        final = await eventually(lambda: (t := shown(service, cs_id)["trigger"])["status"] != "Pending" and t)
        assert (final["status"], final["detail"]) == ("NotImplemented", "UnknownVendorId")


async def test_list_shows_connection_and_pending_counts(service):
    cs_id = service.register("zz-" + str(time.time_ns()))
    service.post(f"/cs/{cs_id}/reconfigure", {"A/B": "1", "A/C": "2"})

    def find():
        offset = 0
        while True:
            page = service.get(f"/cs?offset={offset}&limit=100").json()
            for station in page:
                if station["csId"] == cs_id:
                    return station
            if len(page) < 100:
                return None
            offset += 100

    assert find() == {"csId": cs_id, "connected": False, "pending": 2}
    async with connect(service, cs_id, boot=True) as station:
        await station.next_call("SetVariables")
        listed = await eventually(lambda: (s := find())["pending"] == 0 and s)
        assert (listed["connected"], listed["ocppVersion"]) == (True, "2.0.1")
        assert "lastSeen" in listed
    assert service.get("/cs/nobody-here").status_code == 404
    assert asyncio  # the module's tests are coroutines
