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


def test_registering_at_a_url_that_does_not_answer_is_a_502(client, store: Storage):
    """With a url the handshake starts; a party that cannot be reached is a 502 naming the step, nothing stored."""
    response = client.post("/register", json={"token": "t", "url": "http://127.0.0.1:9/ocpi/versions"})
    assert_status(response, 502, "GET versions", "cannot connect")
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
