"""A hostile partner against the OCPI listener: one test per hole, each through the listener as a partner reaches it.

Every partner here is a strict eMSP served on loopback (tests/ocpi/partner.py); the CPO instance is the real
service with its internal API in-process.
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from pymongo import MongoClient

from maeve_api.ocpi import registration
from maeve_api.storage import _documents as docs
from tests.api.conftest import assert_empty
from tests.conftest import MONGODB_URI_VARIABLE, NO_SERVER_CLOCK
from tests.ocpi.partner import Partner

#: Settings every instance of this module runs with (partners on loopback).
INSTANCE: dict[str, Any] = {}
TOKEN = {
    "country_code": "NL",
    "party_id": "EMS",
    "uid": "R9CARD",
    "type": "RFID",
    "contract_id": "NL-EMS-C12345678",
    "issuer": "eMSP",
    "valid": True,
    "whitelist": "ALLOWED",
    "last_updated": "2026-01-01T00:00:00Z",
}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {base64.b64encode(token.encode()).decode()}"}


def _register(cpo: Any, partner: Partner) -> dict[str, Any]:
    """The partner registers with the CPO through the handshake, with a token A from the internal API."""
    token_a = secrets.token_urlsafe(12)
    assert_empty(cpo.api.post("/register", json={"token": token_a}), 201)
    return partner.register_with(cpo.versions_url, token_a)


def _claim(cpo: Any, attacker: Partner, method: str, token: str, roles: list[dict[str, Any]]) -> requests.Response:
    """The attacker sends credentials claiming ``roles``, with a token B it really accepts."""
    token_b = secrets.token_urlsafe(12)
    attacker.accepted = {token_b}
    body = {"token": token_b, "url": attacker.versions_url, "roles": roles}
    return requests.request(
        method, f"{cpo.ocpi_url}/ocpi/2.2.1/credentials", json=body, headers=_auth(token), timeout=5
    )


def _role(country_code: str, party_id: str) -> dict[str, Any]:
    return {"role": "EMSP", "country_code": country_code, "party_id": party_id, "business_details": {"name": "X"}}


def _refused(response: requests.Response, identity: str) -> None:
    """A 4xx OCPI envelope with a 2xxx status naming the identity."""
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert 2000 <= body["status_code"] < 3000
    assert identity in body["status_message"].upper()


def _locations_work(cpo: Any, token: str) -> bool:
    return requests.get(f"{cpo.ocpi_url}/ocpi/2.2.1/locations", headers=_auth(token), timeout=5).status_code == 200


def test_takeover_by_post_is_refused(make_instance, make_partner):
    """POST credentials claiming an identity another party holds is refused naming it; the victim keeps working."""
    cpo = make_instance(**INSTANCE)
    victim = make_partner()
    victim_c = _register(cpo, victim)["token"]
    attacker = make_partner()
    assert_empty(cpo.api.post("/register", json={"token": "attacker-a"}), 201)
    _refused(_claim(cpo, attacker, "POST", "attacker-a", [_role("nl", "ems")]), "NL/EMS")
    assert _locations_work(cpo, victim_c)
    assert cpo.store.parties.get("NL*EMS")["outbound_token"] == victim.our_token_c
    assert len(cpo.store.parties.all()) == 1


def test_takeover_by_put_is_refused(make_instance, make_partner):
    """PUT credentials moving a party's roles onto another party's identity is refused; both stay as they were."""
    cpo = make_instance(**INSTANCE)
    victim = make_partner()
    victim_c = _register(cpo, victim)["token"]
    attacker = make_partner(country_code="DE", party_id="ATK")
    attacker_c = _register(cpo, attacker)["token"]
    _refused(_claim(cpo, attacker, "PUT", attacker_c, [_role("DE", "ATK"), _role("NL", "EMS")]), "NL/EMS")
    assert _locations_work(cpo, victim_c)
    assert _locations_work(cpo, attacker_c)
    assert cpo.store.parties.get("NL*EMS")["outbound_token"] == victim.our_token_c
    assert [role["party_id"] for role in cpo.store.parties.get("DE*ATK")["roles"]] == ["ATK"]


@pytest.mark.parametrize(
    ("roles", "identity"),
    [
        ([_role("DE", "ABC"), _role("NL", "EMS")], "NL/EMS"),
        ([_role("DE", "ABC"), _role("GB", "CPO")], "GB/CPO"),
        ([_role("gb", "cpo")], "GB/CPO"),
    ],
    ids=["another-partys", "ours", "ours-lower-case"],
)
def test_claims_of_another_partys_or_our_identity_are_refused(make_instance, make_partner, roles, identity):
    """A registration listing another party's identity, or ours, is refused naming it, and token A keeps working."""
    cpo = make_instance(**INSTANCE)
    _register(cpo, make_partner())
    attacker = make_partner(country_code="DE", party_id="ABC")
    assert_empty(cpo.api.post("/register", json={"token": "attacker-a"}), 201)
    _refused(_claim(cpo, attacker, "POST", "attacker-a", roles), identity)
    assert cpo.store.parties.find("DE*ABC") is None
    assert requests.get(cpo.versions_url, headers=_auth("attacker-a"), timeout=5).status_code == 200


@pytest.mark.parametrize(("country_code", "party_id"), [("GB", "CPO"), ("NL", "EMS")], ids=["ours", "another-partys"])
def test_a_partner_we_register_with_cannot_claim_a_taken_identity(make_instance, make_partner, country_code, party_id):
    """registerParty with a url whose partner answers with our identity or another party's is 409, nothing stored."""
    cpo = make_instance(**INSTANCE)
    _register(cpo, make_partner())
    partner = make_partner(country_code=country_code, party_id=party_id)
    response = cpo.api.post("/register", json={"token": partner.token_a, "url": partner.versions_url})
    assert response.status_code == 409
    assert f"{country_code}/{party_id}" in response.json()["error"]
    assert [party["key"] for party in cpo.store.parties.all()] == ["NL*EMS"]


def test_the_uid_case_does_not_bypass_token_ownership(make_instance, make_partner):
    """A PUT under the caller's party with the uid in another case cannot overwrite another party's token."""
    cpo = make_instance(**INSTANCE)
    victim = make_partner(country_code="FR", party_id="AT9")
    victim_c = _register(cpo, victim)["token"]
    victim_token = {**TOKEN, "country_code": "FR", "party_id": "AT9", "uid": "r9card"}
    url = f"{cpo.ocpi_url}/ocpi/2.2.1/tokens"
    put = requests.put(f"{url}/FR/AT9/r9card", json=victim_token, headers=_auth(victim_c), timeout=5)
    assert put.status_code == 201
    attacker_c = _register(cpo, make_partner())["token"]
    attack = {**TOKEN, "uid": "r9card", "valid": False}
    response = requests.put(f"{url}/NL/EMS/R9CARD", json=attack, headers=_auth(attacker_c), timeout=5)
    assert (response.status_code, response.json()["status_code"]) == (400, 2001)
    stored = requests.get(f"{url}/FR/AT9/R9CARD", headers=_auth(victim_c), timeout=5).json()["data"]
    assert (stored["country_code"], stored["party_id"], stored["valid"]) == ("FR", "AT9", True)


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
@pytest.mark.parametrize("engine", ["sqlite", "nx27017", "mongoeco"])
@pytest.mark.parametrize(
    "logo", [{"$date": "x"}, {"$oid": "0123456789ab0123456789ab"}, {"$ref": "tokens", "$id": "R9CARD"}]
)
def test_extended_json_keys_from_a_partner_change_nothing(make_instance, make_partner, engine, logo):
    """Extended-JSON or BSON keys in a partner's business details are refused, and every later call still works."""
    cpo = make_instance(engine=engine, **INSTANCE)
    partner_c = _register(cpo, make_partner())["token"]
    attacker = make_partner(country_code="DE", party_id="ABC")
    assert_empty(cpo.api.post("/register", json={"token": "attacker-a"}), 201)
    role = {**_role("DE", "ABC"), "business_details": {"name": "X", "logo": logo}}
    response = _claim(cpo, attacker, "POST", "attacker-a", [role])
    assert (response.status_code, response.json()["status_code"]) == (400, 2001)
    location = {
        "country_code": "GB",
        "party_id": "CPO",
        "address": "1 Main Street",
        "city": "London",
        "country": "GBR",
        "coordinates": {"latitude": "51.53146", "longitude": "-0.12360"},
        "evses": [],
    }
    assert cpo.api.post("/location/loc1", json=location).status_code == 201
    assert _locations_work(cpo, partner_c)
    assert [party["key"] for party in cpo.store.parties.all()] == ["NL*EMS"]


@pytest.mark.parametrize("engine", ["sqlite", "nx27017"])
def test_concurrent_patches_are_never_lost(make_instance, make_partner, engine):
    """Many partners' PATCHes of one token, each changing another field, all end up in the stored token."""
    cpo = make_instance(engine=engine, **INSTANCE)
    partner_c = _register(cpo, make_partner())["token"]
    url = f"{cpo.ocpi_url}/ocpi/2.2.1/tokens/NL/EMS/R9CARD"
    changes = [
        {"valid": False},
        {"whitelist": "NEVER"},
        {"visual_number": "V-1"},
        {"group_id": "G-1"},
        {"issuer": "Other issuer"},
        {"language": "de"},
    ]
    for _ in range(5):
        assert requests.put(url, json=TOKEN, headers=_auth(partner_c), timeout=5).status_code in (200, 201)
        barrier = threading.Barrier(len(changes))
        answers: list[int] = []

        def patch(change: dict[str, Any], barrier: threading.Barrier = barrier, answers: list[int] = answers) -> None:
            barrier.wait()
            body = {**change, "last_updated": "2026-01-02T00:00:00Z"}
            answers.append(requests.patch(url, json=body, headers=_auth(partner_c), timeout=10).status_code)

        threads = [threading.Thread(target=patch, args=(change,)) for change in changes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers == [200] * len(changes)
        token = requests.get(url, headers=_auth(partner_c), timeout=5).json()["data"]
        for change in changes:
            assert {key: token.get(key) for key in change} == change


def test_a_registered_token_without_identity_reads_locations_only(make_instance):
    """A REGISTERED token A named no party reads locations, and reaches no party's tokens."""
    cpo = make_instance(**INSTANCE)
    assert_empty(cpo.api.post("/register", json={"token": "operator-token", "status": "REGISTERED"}), 201)
    url = f"{cpo.ocpi_url}/ocpi/2.2.1/tokens/NL/EMS/R9CARD"
    assert _locations_work(cpo, "operator-token")
    put = requests.put(url, json=TOKEN, headers=_auth("operator-token"), timeout=5)
    assert (put.status_code, put.json()["status_code"]) == (403, 2001)
    assert cpo.store.tokens.find("R9CARD") is None
    cpo.store.tokens.put({**_stored(TOKEN)})
    get = requests.get(url, headers=_auth("operator-token"), timeout=5)
    assert (get.status_code, get.json().get("data")) == (403, None)


def test_a_registered_token_with_identity_owns_that_partys_tokens_only(make_instance):
    """A REGISTERED token A named NL/EMS writes NL/EMS's tokens and no other party's."""
    cpo = make_instance(**INSTANCE)
    body = {"token": "operator-token", "status": "REGISTERED", "country_code": "NL", "party_id": "EMS"}
    assert_empty(cpo.api.post("/register", json=body), 201)
    url = f"{cpo.ocpi_url}/ocpi/2.2.1/tokens"
    assert (
        requests.put(f"{url}/NL/EMS/R9CARD", json=TOKEN, headers=_auth("operator-token"), timeout=5).status_code == 201
    )
    other = {**TOKEN, "country_code": "DE", "party_id": "ABC", "uid": "OTHER"}
    response = requests.put(f"{url}/DE/ABC/OTHER", json=other, headers=_auth("operator-token"), timeout=5)
    assert (response.status_code, response.json()["status_code"]) == (403, 2001)
    assert cpo.store.tokens.find("OTHER") is None


def _stored(token: dict[str, Any]) -> dict[str, Any]:
    return {
        "uid": token["uid"],
        "country_code": token["country_code"],
        "party_id": token["party_id"],
        "type": token["type"],
        "contract_id": token["contract_id"],
        "issuer": token["issuer"],
        "valid": token["valid"],
        "cache_mode": token["whitelist"],
        "last_updated": datetime(2026, 1, 1, tzinfo=UTC),
    }


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
@pytest.mark.parametrize("engine", ["sqlite", "nx27017", "mongoeco"])
def test_no_inbound_token_is_stored_in_clear_text(make_instance, make_partner, tmp_path, request, engine):
    """Tokens A, B and C that partners call us with appear nowhere in the SQLite files or the Mongo documents."""
    cpo = make_instance(engine=engine, **INSTANCE)
    assert_empty(cpo.api.post("/register", json={"token": "pending-token-a-secret"}), 201)
    assert_empty(cpo.api.post("/register", json={"token": "registered-token-a-secret", "status": "REGISTERED"}), 201)
    ours = make_partner()
    token_c = _register(cpo, ours)["token"]
    theirs = make_partner(country_code="DE", party_id="THE")
    assert_empty(cpo.api.post("/register", json={"token": theirs.token_a, "url": theirs.versions_url}), 201)
    token_b = theirs.their_token
    secrets_stored = ["pending-token-a-secret", "registered-token-a-secret", token_c, token_b]
    if engine == "sqlite":
        database = Path(cpo.url.removeprefix("sqlite:///"))
        stored = b"".join(f.read_bytes() for f in database.parent.iterdir() if f.name.startswith(database.name))
        for secret in secrets_stored:
            assert secret.encode() not in stored
    else:
        client: MongoClient[Any] = request.getfixturevalue(
            {"nx27017": "nx_client", "mongoeco": "mongoeco_client"}[engine]
        )
        name = cpo.url.rsplit("/", 1)[1]
        documents = str({c: list(client[name][c].find()) for c in client[name].list_collection_names()})
        assert "NL*EMS" in documents
        for secret in secrets_stored:
            assert secret not in documents


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
@pytest.mark.parametrize("engine", ["nx27017", "mongoeco", "mongodb"])
def test_token_b_lasts_its_lifetime_on_the_databases_clock_whatever_a_workers_clock(
    make_instance, make_partner, monkeypatch, engine
):
    """The token B offered in our POST works for its lifetime on MongoDB's clock, not the workers': a worker whose
    clock runs 5 minutes ahead still accepts it, and once it has expired one whose clock runs 5 minutes behind
    refuses it. (SQLite serves one host, whose clock all its workers share.)"""
    if engine == "mongodb" and not os.environ.get(MONGODB_URI_VARIABLE):
        pytest.skip(f"{MONGODB_URI_VARIABLE} is not set")
    monkeypatch.setattr(registration, "TOKEN_B_LIFETIME", timedelta(seconds=2), raising=False)
    cpo = make_instance(engine=engine, **INSTANCE)
    monkeypatch.setattr(type(cpo.store.registrations), "remove", lambda self, token: None)  # never retired
    partner = make_partner(credentials_status=500)
    response = cpo.api.post("/register", json={"token": partner.token_a, "url": partner.versions_url})
    assert response.status_code == 502
    [offered] = [r.body["token"] for r in partner.received if r.method == "POST"]
    real_now, real_utc_now = docs.now, registration.utc_now
    for skew in (timedelta(minutes=5), -timedelta(minutes=5)):
        # The worker's clocks skewed, as on another host: the store's Python clock and the handshake's.
        monkeypatch.setattr(docs, "now", lambda skew=skew: real_now() + skew)
        monkeypatch.setattr(registration, "utc_now", lambda skew=skew: real_utc_now() + skew)
        if skew > timedelta(0):
            assert requests.get(cpo.versions_url, headers=_auth(offered), timeout=5).status_code == 200
    deadline = time.monotonic() + 5
    while requests.get(cpo.versions_url, headers=_auth(offered), timeout=5).status_code == 200:
        assert time.monotonic() < deadline, "token B still works"
        time.sleep(0.1)


def test_token_b_expires_even_if_the_handshake_never_ends(make_instance, make_partner, monkeypatch):
    """The token B offered in our POST stops working by itself when the worker never gets to retire it."""
    monkeypatch.setattr(registration, "TOKEN_B_LIFETIME", timedelta(seconds=1), raising=False)
    cpo = make_instance(**INSTANCE)
    # The worker dies after offering B: whatever it would do next, retiring B included, never happens.
    monkeypatch.setattr(type(cpo.store.registrations), "remove", lambda self, token: None)
    partner = make_partner(credentials_status=500)
    response = cpo.api.post("/register", json={"token": partner.token_a, "url": partner.versions_url})
    assert response.status_code == 502
    [offered] = [r.body["token"] for r in partner.received if r.method == "POST"]
    deadline = time.monotonic() + 5
    while requests.get(cpo.versions_url, headers=_auth(offered), timeout=5).status_code == 200:
        assert time.monotonic() < deadline, "token B still works"
        time.sleep(0.1)
    assert time.monotonic() < deadline
