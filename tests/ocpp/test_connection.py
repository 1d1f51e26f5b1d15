"""Connecting to the OCPP endpoint: authentication at the upgrade, boot and runtime details, one connection per
station, and bad input from a station."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import sqlite3
from urllib.parse import quote

import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from tests.factories import make_certificate_pem
from tests.ocpp.conftest import HEARTBEAT_INTERVAL, PASSWORD, basic, connect, eventually, password_hash, refused_with

pytestmark = pytest.mark.anyio


async def test_an_unknown_station_is_refused_with_404(service):
    assert await refused_with(service, "nobody-registered") == 404


async def test_a_wrong_password_is_refused_with_401(service):
    cs_id = service.register()
    assert await refused_with(service, cs_id, "wrong-password-123") == 401


async def test_no_credentials_are_refused_with_401(service):
    cs_id = service.register()
    assert await refused_with(service, cs_id, None) == 401


async def test_a_station_registered_without_a_password_cannot_use_basic_auth(service):
    cs_id = service.register(password=None)
    assert await refused_with(service, cs_id, "") == 401


async def test_the_username_must_be_the_station_id_unless_invalid_usernames_are_allowed(service):
    strict = service.register()
    lenient = service.register(invalid_username_allowed=True)
    assert await refused_with(service, strict, username="someone-else") == 401
    async with connect(service, lenient, username="someone-else") as station:
        assert station.ws.subprotocol == "ocpp2.0.1"


async def test_profile_1_needs_tls_which_a_trusted_proxy_reports(service):
    cs_id = service.register(profile=1)
    assert await refused_with(service, cs_id) == 401
    async with connect(service, cs_id, headers={"X-Forwarded-Proto": "https"}) as station:
        assert station.ws.subprotocol == "ocpp2.0.1"


async def test_profile_2_connects_with_a_registered_certificate_of_its_own_cn(service):
    cs_id = service.register(profile=2, password=None)
    pem = make_certificate_pem(cs_id)
    other = make_certificate_pem(f"{cs_id}-other")
    for certificate in (pem, other):
        assert service.post("/certificate", {"certificate": certificate}).status_code == 201
    proxy = {"X-Forwarded-Proto": "https", "X-Client-Cert-Chain-Verified": "SUCCESS"}
    async with connect(service, cs_id, None, headers={**proxy, "X-Client-Cert": quote(pem)}) as station:
        assert station.ws.subprotocol == "ocpp2.0.1"
    from cryptography import x509

    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    digest = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    async with connect(service, cs_id, None, headers={**proxy, "X-Client-Cert-Hash": digest}):
        pass
    # Another station's certificate, an unregistered one, an unverified chain and plain ws are refused.
    assert await refused_with(service, cs_id, None, headers={**proxy, "X-Client-Cert": quote(other)}) == 401
    unregistered = make_certificate_pem(cs_id, serial_number=99)
    assert await refused_with(service, cs_id, None, headers={**proxy, "X-Client-Cert": quote(unregistered)}) == 401
    unverified = {**proxy, "X-Client-Cert-Chain-Verified": "FAILED", "X-Client-Cert": quote(pem)}
    assert await refused_with(service, cs_id, None, headers=unverified) == 401
    assert await refused_with(service, cs_id, None, headers={"X-Client-Cert": quote(pem)}) == 401
    # Basic auth is no way in for a certificate profile.
    assert await refused_with(service, cs_id, PASSWORD, headers={"X-Forwarded-Proto": "https"}) == 401


async def test_a_percent_encoded_station_id_is_decoded(service):
    cs_id = service.register("cs with space")
    async with connect(service, cs_id, boot=True) as station:
        assert station.ws.subprotocol == "ocpp2.0.1"


async def test_no_common_subprotocol_completes_the_handshake_and_closes(service):
    cs_id = service.register()
    async with websockets.connect(
        f"{service.ws}/ws/{cs_id}",
        subprotocols=["ocpp2.1"],
        additional_headers={"Authorization": basic(cs_id, PASSWORD)},
    ) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 1002


async def test_boot_2_0_1_is_accepted_and_its_details_are_stored(service, store):
    cs_id = service.register()
    async with connect(service, cs_id) as station:
        result = await station.boot()
        assert (result.status, result.interval) == ("Accepted", HEARTBEAT_INTERVAL)
        heartbeat = await station.call(call201.Heartbeat(), suppress=False)
        assert heartbeat.current_time.endswith("Z")
        shown = service.get(f"/cs/{cs_id}").json()
        assert shown["connected"] is True
        assert shown["ocppVersion"] == "2.0.1"
        assert shown["bootInfo"] == {"vendor": "Acme", "model": "Volt", "serialNumber": "SN-1",
                                     "firmwareVersion": "1.2.3"}
        assert {"lastBoot", "lastSeen"} <= shown.keys()
    await eventually(lambda: service.get(f"/cs/{cs_id}").json()["connected"] is False)


async def test_boot_1_6_is_accepted_and_its_details_are_stored(service, store):
    cs_id = service.register()
    async with connect(service, cs_id, version="1.6") as station:
        assert station.ws.subprotocol == "ocpp1.6"
        result = await station.boot()
        assert (result.status, result.interval) == ("Accepted", HEARTBEAT_INTERVAL)
        runtime = await eventually(lambda: store.ocpp.runtime(cs_id))
        assert (runtime["ocpp_version"], runtime["vendor"], runtime["serial_number"]) == ("1.6", "Acme", "SN-16")


async def test_station_messages_are_acknowledged(service):
    cs_id = service.register()
    async with connect(service, cs_id, boot=True) as station:
        now = "2025-01-01T00:00:00Z"
        answers = [
            await station.call(call201.StatusNotification(timestamp=now, connector_status="Available", evse_id=1,
                                                          connector_id=1), suppress=False),
            await station.call(call201.NotifyEvent(generated_at=now, seq_no=0, event_data=[{
                "event_id": 1, "timestamp": now, "trigger": "Alerting", "actual_value": "1",
                "event_notification_type": "HardWiredNotification", "component": {"name": "X"},
                "variable": {"name": "Y"}}]), suppress=False),
            await station.call(call201.NotifyReport(request_id=1, generated_at=now, seq_no=0), suppress=False),
            await station.call(call201.MeterValues(evse_id=1, meter_value=[
                {"timestamp": now, "sampled_value": [{"value": 1.0}]}]), suppress=False),
            await station.call(call201.SecurityEventNotification(type="StartupOfTheDevice", timestamp=now),
                               suppress=False),
            await station.call(call201.FirmwareStatusNotification(status="Idle"), suppress=False),
            await station.call(call201.LogStatusNotification(status="Idle"), suppress=False),
        ]
        assert all(answer is not None for answer in answers)
        transfer = await station.call(call201.DataTransfer(vendor_id="com.example"), suppress=False)
        assert transfer.status == "UnknownVendorId"
        signed = await station.call(call201.SignCertificate(csr="-----BEGIN CERTIFICATE REQUEST-----"),
                                    suppress=False)
        assert signed.status == "Rejected"


async def test_1_6_station_messages_are_acknowledged(service):
    cs_id = service.register()
    async with connect(service, cs_id, version="1.6", boot=True) as station:
        now = "2025-01-01T00:00:00Z"
        assert (await station.call(call16.Heartbeat(), suppress=False)).current_time
        await station.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available"),
                           suppress=False)
        await station.call(call16.MeterValues(connector_id=1, meter_value=[
            {"timestamp": now, "sampled_value": [{"value": "1"}]}]), suppress=False)
        await station.call(call16.DiagnosticsStatusNotification(status="Idle"), suppress=False)
        await station.call(call16.FirmwareStatusNotification(status="Idle"), suppress=False)
        await station.call(call16.SecurityEventNotification(type="StartupOfTheDevice", timestamp=now, tech_info="boot"),
                           suppress=False)
        transfer = await station.call(call16.DataTransfer(vendor_id="com.example"), suppress=False)
        assert transfer.status == "UnknownVendorId"
        assert (await station.call(call16.SignCertificate(csr="x"), suppress=False)).status == "Rejected"


async def test_a_second_connection_replaces_the_first(service, store):
    cs_id = service.register()
    async with connect(service, cs_id, boot=True) as first:
        # Connections land on either worker; whichever it is, the old one is closed.
        async with connect(service, cs_id) as second:
            await asyncio.wait_for(first.ws.wait_closed(), 5)
            assert (await second.call(call201.Heartbeat(), suppress=False)).current_time
            assert service.get(f"/cs/{cs_id}").json()["connected"] is True


async def raw_exchange(ws, frame: str) -> list:
    await ws.send(frame)
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "FormatViolation"),
        ('{"an": "object"}', "ProtocolError"),
        ("[2]", "ProtocolError"),
        ('[9, "x", "Heartbeat", {}]', "PropertyConstraintViolation"),
        ('[2, "a1", "BootNotification", {"reason": "PowerUp"}]', "ProtocolError"),
        ('[2, "a2", "Heartbeat", {"unexpected": 1}]', "FormatViolation"),
        ('[2, "a3", "NoSuchAction", {}]', "NotImplemented"),
        ('[2, "a4", "NotifyChargingLimit", {"chargingLimit": {"chargingLimitSource": "EMS"}}]', "NotSupported"),
    ],
)
async def test_bad_frames_get_a_call_error_and_the_connection_stays_up(service, frame, code):
    cs_id = service.register()
    async with websockets.connect(
        f"{service.ws}/ws/{cs_id}", subprotocols=["ocpp2.0.1"],
        additional_headers={"Authorization": basic(cs_id, PASSWORD)},
    ) as ws:
        answer = await raw_exchange(ws, frame)
        assert answer[0] == 4
        assert answer[2] == code
        assert frame not in json.dumps(answer[3:]) or frame in ("[2]",)
        ok = await raw_exchange(ws, '[2, "hb", "Heartbeat", {}]')
        assert ok[:2] == [3, "hb"]


async def test_a_call_while_the_previous_is_unanswered_is_refused(service):
    """OCPP-J allows one call in flight: a call sent while the previous is unanswered gets a CallError at once."""
    if not service.database_url.startswith("sqlite:"):
        pytest.skip("the connection's rule, the same on every store; on SQLite the test can hold the first call back")
    cs_id = service.register()
    async with websockets.connect(
        f"{service.ws}/ws/{cs_id}", subprotocols=["ocpp2.0.1"],
        additional_headers={"Authorization": basic(cs_id, PASSWORD)},
    ) as ws:
        answers = {}

        async def answer(unique_id: str) -> list:
            while unique_id not in answers:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if frame[0] in (3, 4):
                    answers[frame[1]] = frame
            return answers[unique_id]

        await ws.send(json.dumps([2, "ready", "Heartbeat", {}]))  # answered: the CSMS is reading this connection
        assert (await answer("ready"))[0] == 3
        boot = {"reason": "PowerUp", "chargingStation": {"vendorName": "Acme", "model": "Volt"}}
        # The boot's write waits for this lock, so the first call is still unanswered when the second arrives.
        path = service.database_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as lock:
            lock.execute("BEGIN IMMEDIATE")
            await ws.send(json.dumps([2, "first", "BootNotification", boot]))
            await ws.send(json.dumps([2, "second", "Heartbeat", {}]))
            assert (await answer("second"))[:3] == [4, "second", "GenericError"]
            lock.execute("ROLLBACK")
        assert (await answer("first"))[0] == 3


async def test_1_6_bad_payload_gets_a_call_error(service):
    cs_id = service.register()
    async with websockets.connect(
        f"{service.ws}/ws/{cs_id}", subprotocols=["ocpp1.6"],
        additional_headers={"Authorization": basic(cs_id, PASSWORD)},
    ) as ws:
        answer = await raw_exchange(ws, '[2, "b1", "Authorize", {"idTag": 5}]')
        assert answer[:3] == [4, "b1", "TypeConstraintViolation"]


async def test_no_password_hash_or_certificate_is_ever_logged(service):
    """After the connections, refusals and certificate logins so far, the service's log holds no credential."""
    cs_id = service.register()
    assert await refused_with(service, cs_id, "a-wrong-password-here") == 401
    async with connect(service, cs_id, boot=True):
        pass
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(f"{service.ws}/ws/{cs_id}?token=query-secret-1", subprotocols=["ocpp2.0.1"]):
            pass
    log = service.log.read_text(errors="replace")
    assert "OCPP upgrade of" in log  # the refusals were logged
    for secret in (PASSWORD, "a-wrong-password-here", password_hash(PASSWORD), basic(cs_id, PASSWORD)[6:],
                   "BEGIN CERTIFICATE", "MII", "query-secret-1"):
        assert secret not in log
