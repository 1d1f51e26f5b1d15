"""Charge stations through the real app: register, auth lookup, reconfigure, certificates, trigger."""

from __future__ import annotations

import base64
import hashlib

import pytest

from maeve_api.storage import Storage
from tests.api.conftest import assert_empty, assert_status
from tests.factories import make_certificate_pem

PASSWORD_HASH = base64.b64encode(hashlib.sha256(b"password").digest()).decode()
# A digest whose standard base64 holds both '+' and '/', so its URL-safe form differs.
URLSAFE_PASSWORD_HASH = base64.urlsafe_b64encode(hashlib.sha256(b"pw7").digest()).decode()


def register(client, cs_id: str = "cs001", **body):
    return client.post(f"/cs/{cs_id}", json={"securityProfile": 1, **body})


def test_register_then_lookup_returns_the_auth_record(client):
    """A registered station's auth lookup returns its profile, password hash and username flag."""
    assert_empty(register(client, base64SHA256Password=PASSWORD_HASH), 201)
    response = client.get("/cs/cs001/auth")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "securityProfile": 1,
        "base64SHA256Password": PASSWORD_HASH,
        "invalidUsernameAllowed": False,
    }


def test_lookup_omits_an_unset_password(client):
    """Without a password the lookup leaves the field out and still states invalidUsernameAllowed."""
    register(client, "cs002", securityProfile=2, invalidUsernameAllowed=True)
    assert client.get("/cs/cs002/auth").json() == {"securityProfile": 2, "invalidUsernameAllowed": True}


def test_register_replaces_the_whole_auth_record(client):
    """Registering again replaces the record: a password not sent again is gone."""
    register(client, base64SHA256Password=PASSWORD_HASH, invalidUsernameAllowed=True)
    register(client, securityProfile=2)
    assert client.get("/cs/cs001/auth").json() == {"securityProfile": 2, "invalidUsernameAllowed": False}


def test_lookup_of_an_unknown_station_is_404(client):
    """An unknown station's lookup is a 404 Status naming it."""
    body = assert_status(client.get("/cs/nobody/auth"), 404, "charge station: not found")
    assert "nobody" not in body["error"]


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"securityProfile": 3}, "securityProfile"),
        ({"securityProfile": -1}, "securityProfile"),
        ({"securityProfile": 256}, "securityProfile"),
        ({"securityProfile": "1"}, "securityProfile"),
        ({"securityProfile": 1.5}, "securityProfile"),
        ({"securityProfile": True}, "securityProfile"),
        ({}, "securityProfile"),
        ({"securityProfile": 1, "base64SHA256Password": "password"}, "base64SHA256Password"),
        ({"securityProfile": 1, "base64SHA256Password": PASSWORD_HASH.rstrip("=")}, "base64SHA256Password"),
        ({"securityProfile": 1, "base64SHA256Password": URLSAFE_PASSWORD_HASH}, "base64SHA256Password"),
        ({"securityProfile": 1, "invalidUsernameAllowed": "yes"}, "invalidUsernameAllowed"),
        ({"securityProfile": 1, "securityprofile": 2}, "securityprofile"),
    ],
)
def test_register_refuses_bad_bodies_and_stores_nothing(client, body, mentions):
    """Out-of-range profiles, plain or mis-encoded passwords, wrong types and unknown fields are 400."""
    assert_status(client.post("/cs/cs009", json=body), 400, mentions)
    assert client.get("/cs/cs009/auth").status_code == 404


def test_register_refuses_an_overlong_id(client):
    """A charge station id is at most 28 characters."""
    assert_empty(register(client, "c" * 28), 201)
    assert_status(register(client, "c" * 29), 400, "csId")


def test_reconfigure_merges_settings_by_name(client, store: Storage):
    """Reconfiguring merges with staged settings; every staged setting is Pending."""
    register(client)
    assert_empty(client.post("/cs/cs001/reconfigure", json={"a": "1", "b": "2"}), 200)
    assert_empty(client.post("/cs/cs001/reconfigure", json={"b": "3", "Comp;1/Var.x$y": "4"}), 200)
    assert store.charge_stations.settings("cs001") == [
        {"name": "Comp;1/Var.x$y", "value": "4", "status": "Pending"},
        {"name": "a", "value": "1", "status": "Pending"},
        {"name": "b", "value": "3", "status": "Pending"},
    ]


def test_setting_names_and_values_with_nul_and_non_ascii_round_trip(client, store: Storage):
    """Any string is a setting name or value: NUL bytes, dots, dollars and non-ASCII are kept as sent."""
    register(client)
    settings = {"a\u0000b": "v\u0000w", "$set.x": "é", "日本/設定": "1"}
    assert_empty(client.post("/cs/cs001/reconfigure", json=settings), 200)
    stored = {s["name"]: s["value"] for s in store.charge_stations.settings("cs001")}
    assert stored == settings


def test_reconfigure_of_an_unknown_station_is_404_and_stores_nothing(client, store: Storage):
    """Settings for a station never registered are refused."""
    assert_status(client.post("/cs/ghost/reconfigure", json={"a": "1"}), 404, "charge station: not found")
    assert store.charge_stations.settings("ghost") == []


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"": "x"}, "setting name"),
        ({"n" * 501: "x"}, "setting name"),
        ({"a": "v" * 1001}, "1000"),
        ({"a": 1}, "a: must be a string"),
        (["a", "b"], "body: must be a JSON object"),
    ],
)
def test_reconfigure_refuses_bad_settings_and_stores_none(client, store: Storage, body, mentions):
    """Empty or overlong names, overlong or non-string values and non-objects are 400; nothing is staged."""
    register(client)
    good = {"good": "1"} if isinstance(body, dict) else {}
    assert_status(client.post("/cs/cs001/reconfigure", json={**good, **body} if good else body), 400, mentions)
    assert store.charge_stations.settings("cs001") == []


def test_install_certificates_validates_every_item_before_storing(client, store: Storage):
    """One bad PEM among good ones is a 400 naming it, and nothing is staged."""
    register(client)
    body = {
        "certificates": [
            {"type": "V2G", "certificate": make_certificate_pem("root")},
            {"type": "MO", "certificate": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"},
        ]
    }
    assert_status(client.post("/cs/cs001/certificates", json=body), 400, "certificates[1].certificate")
    assert store.charge_stations.install_certificates("cs001") == []


def test_install_certificates_keys_by_der_hash_and_merges(client, store: Storage):
    """Certificates are keyed by hex SHA-256 of the DER; literal \\n PEMs work; duplicates: last wins."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    register(client)
    pem = make_certificate_pem("root")
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
    cert_id = hashlib.sha256(der).hexdigest()
    literal = pem.replace("\n", "\\n")
    body = {
        "certificates": [
            {"type": "V2G", "certificate": pem},
            {"type": "MO", "certificate": literal, "status": "Accepted"},
        ]
    }
    assert_empty(client.post("/cs/cs001/certificates", json=body), 200)
    [stored] = store.charge_stations.install_certificates("cs001")
    assert stored["certificate_id"] == cert_id
    assert (stored["type"], stored["status"]) == ("MO", "Accepted")

    other = make_certificate_pem("other")
    client.post("/cs/cs001/certificates", json={"certificates": [{"type": "CSMS", "certificate": other}]})
    stored = store.charge_stations.install_certificates("cs001")
    assert len(stored) == 2
    assert {c["status"] for c in stored if c["type"] == "CSMS"} == {"Pending"}


@pytest.mark.parametrize(
    "item",
    [
        {"type": "XYZ", "certificate": "x"},
        {"type": "V2G"},
        {"type": "V2G", "certificate": "x", "status": "Done"},
    ],
)
def test_install_certificates_refuses_bad_items(client, item):
    """Unknown types or statuses and missing certificates are 400."""
    register(client)
    assert_status(client.post("/cs/cs001/certificates", json={"certificates": [item]}), 400)


def test_install_certificates_on_an_unknown_station_is_404(client):
    """Certificates for a station never registered are refused."""
    body = {"certificates": [{"type": "V2G", "certificate": make_certificate_pem("root")}]}
    assert_status(client.post("/cs/ghost/certificates", json=body), 404, "charge station: not found")


def test_trigger_answers_200_and_keeps_one_pending_trigger(client, store: Storage):
    """A trigger is 200 with no body, and a second one replaces the first."""
    register(client)
    assert_empty(client.post("/cs/cs001/trigger", json={"trigger": "BootNotification"}), 200)
    assert_empty(client.post("/cs/cs001/trigger", json={"trigger": "SignV2GCertificate"}), 200)
    assert store.charge_stations.find_trigger("cs001") == {"message": "SignV2GCertificate", "status": "Pending"}


def test_trigger_refuses_unknown_messages_and_stations(client):
    """An unknown trigger is 400; a trigger for an unknown station is 404."""
    register(client)
    assert_status(client.post("/cs/cs001/trigger", json={"trigger": "Heartbeat"}), 400, "trigger")
    response = client.post("/cs/ghost/trigger", json={"trigger": "BootNotification"})
    assert_status(response, 404, "charge station: not found")
