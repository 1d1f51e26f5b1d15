"""OCPI party registration through the real app, without the CSMS-initiated handshake."""

from __future__ import annotations

import pytest

from maeve_api.ocpi.registration import token_hash
from maeve_api.storage import Storage
from tests.api.conftest import assert_empty, assert_status


def test_a_token_is_stored_pending_by_default(client, store: Storage):
    """Without status a new token A is PENDING."""
    assert_empty(client.post("/register", json={"token": "token-a"}), 201)
    assert store.registrations.find(token_hash("token-a")) == {"token_hash": token_hash("token-a"), "status": "PENDING"}


def test_reposting_without_status_never_downgrades(client, store: Storage):
    """A REGISTERED token posted again without status stays REGISTERED; an explicit status applies."""
    client.post("/register", json={"token": "t", "status": "REGISTERED"})
    client.post("/register", json={"token": "t"})
    assert store.registrations.find(token_hash("t"))["status"] == "REGISTERED"
    client.post("/register", json={"token": "t", "status": "PENDING"})
    assert store.registrations.find(token_hash("t"))["status"] == "PENDING"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/ocpi/versions",
        "http://localhost:9410/api/v0/token/T1",
        "http://10.1.2.3/ocpi/versions",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9410/ocpi/versions",
        "http://[::ffff:127.0.0.1]:9410/ocpi/versions",
        "ftp://emsp.example.com/ocpi/versions",
    ],
)
def test_registering_at_a_private_address_is_refused(client, store: Storage, url):
    """By default the handshake never calls a loopback, private, link-local or mapped address, nor a non-http URL:
    a 400 naming url and the rule, and nothing stored."""
    response = client.post("/register", json={"token": "t", "url": url})
    assert_status(response, 400, "url")
    assert store.registrations.find(token_hash("t")) is None
    assert store.parties.all() == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token": ""},
        {"token": "t" * 65},
        {"token": "has space"},
        {"token": "t", "status": "registered"},
        {"token": "t", "url": "not a uri"},
        {"token": "t", "country_code": "NL"},
        {"token": "t", "party_id": "EMS"},
        {"token": "t", "country_code": "NLD", "party_id": "EMS"},
        {"token": "t", "country_code": "gb", "party_id": "twk"},
    ],
)
def test_bad_registrations_are_refused(client, body):
    """Missing, empty, overlong or non-printable tokens, unknown statuses and bad URLs are 400."""
    assert_status(client.post("/register", json=body), 400)


def test_a_token_may_be_registered_for_one_party_identity(client, store: Storage):
    """With country_code and party_id the registration keeps the identity the token may register as."""
    body = {"token": "t", "status": "REGISTERED", "country_code": "NL", "party_id": "EMS"}
    assert_empty(client.post("/register", json=body), 201)
    assert store.registrations.find(token_hash("t")) == {
        "token_hash": token_hash("t"),
        "status": "REGISTERED",
        "country_code": "NL",
        "party_id": "EMS",
    }
