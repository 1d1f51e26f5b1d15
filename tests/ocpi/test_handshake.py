"""The OCPI credentials handshake in both directions, with strict and reference-style partners and between two
instances of the service; failures leave nothing half-registered."""

from __future__ import annotations

import base64
import logging

import pytest
import requests

from maeve_api.ocpi.registration import token_hash
from tests.api.conftest import assert_empty, assert_status


def _token_works(url: str, token: str) -> bool:
    header = f"Token {base64.b64encode(token.encode()).decode()}"
    return requests.get(url, headers={"Authorization": header}, timeout=3).status_code == 200


def test_we_register_with_a_strict_emsp(make_instance, make_partner):
    """registerParty with a url runs versions, details, POST credentials in order and stores the eMSP with its C."""
    partner = make_partner()
    cpo = make_instance()
    assert_empty(cpo.api.post("/register", json={"token": partner.token_a, "url": partner.versions_url}), 201)
    assert partner.steps == ["versions", "details", "credentials"]
    party = cpo.store.parties.get("NL*EMS")
    assert (party["outbound_token"], party["inbound_token_hash"]) == (
        partner.our_token_c,
        token_hash(partner.their_token),
    )
    assert (party["version"], party["token_encoding"]) == ("2.2.1", "base64")
    assert party["versions_url"] == partner.versions_url
    assert {"identifier": "locations", "role": "RECEIVER", "url": f"{partner.base_url}/ocpi/emsp/locations"} in party[
        "endpoints"
    ]
    assert party["roles"][0]["role"] == "EMSP"
    assert cpo.store.registrations.find(token_hash(partner.their_token)) is None
    response = partner.call_cpo("GET", f"{cpo.ocpi_url}/ocpi/2.2.1/locations", partner.their_token)
    assert response.status_code == 200


def test_a_strict_emsp_registers_with_us(make_instance, make_partner):
    """A POST of credentials with token A gets 200 and our credentials with a new token C; A stops working."""
    cpo = make_instance()
    partner = make_partner()
    assert_empty(cpo.api.post("/register", json={"token": "token-a-for-emsp"}), 201)
    answer = partner.register_with(cpo.versions_url, "token-a-for-emsp")
    calls_back = [r for r in partner.received if r.method == "GET"]
    assert [r.path for r in calls_back] == ["/ocpi/versions", "/ocpi/2.2.1"]
    assert {r.headers["X-Correlation-ID"] for r in calls_back} == {partner.last_correlation_id}
    assert answer["url"] == cpo.versions_url
    assert answer["roles"] == [
        {"role": "CPO", "business_details": {"name": "CSMS CPO"}, "party_id": "CPO", "country_code": "GB"}
    ]
    party = cpo.store.parties.get("NL*EMS")
    assert (party["outbound_token"], party["inbound_token_hash"]) == (partner.our_token_c, token_hash(answer["token"]))
    assert cpo.store.registrations.find(token_hash("token-a-for-emsp")) is None
    assert partner.call_cpo("GET", cpo.versions_url, "token-a-for-emsp").status_code == 401
    assert partner.call_cpo("GET", f"{cpo.ocpi_url}/ocpi/2.2.1/locations", answer["token"]).status_code == 200
    again = partner.call_cpo("POST", f"{cpo.ocpi_url}/ocpi/2.2.1/credentials", answer["token"], answer)
    assert (again.status_code, again.json()["status_code"]) == (405, 2000)


def test_a_registered_partner_rotates_and_unregisters(make_instance, make_partner):
    """PUT credentials re-reads the partner and issues a new token (the old one stops); DELETE unregisters."""
    cpo = make_instance()
    partner = make_partner()
    cpo.api.post("/register", json={"token": "token-a"})
    first = partner.register_with(cpo.versions_url, "token-a")
    credentials_url = f"{cpo.ocpi_url}/ocpi/2.2.1/credentials"
    partner.accepted = {"new-token-b"}
    body = {**first, "token": "new-token-b", "url": partner.versions_url}
    body["roles"] = [{**first["roles"][0], "role": "EMSP", "party_id": "EMS", "country_code": "NL"}]
    rotated = partner.call_cpo("PUT", credentials_url, first["token"], body)
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["data"]["token"]
    assert second != first["token"]
    assert cpo.store.parties.get("NL*EMS")["outbound_token"] == "new-token-b"
    assert partner.call_cpo("GET", cpo.versions_url, first["token"]).status_code == 401
    assert partner.call_cpo("GET", credentials_url, second).json()["data"]["token"] == second
    assert partner.call_cpo("DELETE", credentials_url, second).status_code == 200
    assert cpo.store.parties.all() == []
    assert partner.call_cpo("GET", cpo.versions_url, second).status_code == 401


def test_a_reference_style_2_2_peer_with_raw_tokens(make_instance, make_partner):
    """A 2.2 peer that wants raw tokens and answers 201 is registered, and remembered as raw."""
    partner = make_partner(version="2.2", raw_tokens=True, credentials_status=201)
    cpo = make_instance()
    assert_empty(cpo.api.post("/register", json={"token": partner.token_a, "url": partner.versions_url}), 201)
    party = cpo.store.parties.get("NL*EMS")
    assert (party["version"], party["token_encoding"]) == ("2.2", "raw")
    response = partner.call_cpo("GET", f"{cpo.ocpi_url}/ocpi/2.2/locations", partner.their_token)
    assert response.status_code == 200


@pytest.mark.parametrize("who_starts", ["first", "second"])
def test_two_instances_register_with_each_other(make_instance, who_starts):
    """Either instance can start; both end up with the other as a party, each with distinct tokens per direction."""
    first = make_instance("AAA", "GB")
    second = make_instance("BBB", "NL")
    starter, receiver = (first, second) if who_starts == "first" else (second, first)
    assert_empty(receiver.api.post("/register", json={"token": "shared-token-a"}), 201)
    response = starter.api.post("/register", json={"token": "shared-token-a", "url": receiver.versions_url})
    assert_empty(response, 201)
    at_first = first.store.parties.get("NL*BBB")
    at_second = second.store.parties.get("GB*AAA")
    assert token_hash(at_first["outbound_token"]) == at_second["inbound_token_hash"]
    assert token_hash(at_second["outbound_token"]) == at_first["inbound_token_hash"]
    assert token_hash(at_first["outbound_token"]) != at_first["inbound_token_hash"]
    assert _token_works(f"{second.ocpi_url}/ocpi/2.2.1/locations", at_first["outbound_token"])
    assert _token_works(f"{first.ocpi_url}/ocpi/2.2.1/locations", at_second["outbound_token"])
    assert not _token_works(f"{receiver.ocpi_url}/ocpi/versions", "shared-token-a")


@pytest.mark.parametrize(
    ("failure", "step", "said"),
    [
        ("down", "GET versions", "cannot connect"),
        ("401", "GET versions", "HTTP 401"),
        ("malformed", "GET versions", "not an OCPI envelope"),
        ("timeout", "GET versions", "no answer"),
        ("no_credentials", "find the credentials endpoint", "no credentials"),
        ("bad_credentials", "POST credentials", "no credentials token"),
    ],
)
def test_a_failed_handshake_is_a_502_and_leaves_nothing(make_instance, make_partner, caplog, failure, step, said):
    """Each failing step gives a 502 naming it and what the partner did; no party and no valid token remain,
    and no token reaches the log."""
    caplog.set_level(logging.DEBUG)
    partner = make_partner(failure=None if failure == "down" else failure)
    if failure == "down":
        partner.stop()
    cpo = make_instance()
    response = cpo.api.post("/register", json={"token": partner.token_a, "url": partner.versions_url})
    body = assert_status(response, 502, step, said)
    assert partner.token_a not in body["error"]
    assert cpo.store.parties.all() == []
    offered = [r.body["token"] for r in partner.received if r.method == "POST"]
    for token in offered:
        assert cpo.store.registrations.find(token_hash(token)) is None
        assert not _token_works(cpo.versions_url, token)
    if failure == "bad_credentials":
        assert offered
    for token in [partner.token_a, *offered]:
        assert token not in caplog.text
