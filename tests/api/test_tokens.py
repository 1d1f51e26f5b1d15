"""Authorization tokens through the real app: upsert, lookup, list."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.api.conftest import assert_empty, assert_status

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def make_token(**overrides):
    token = {
        "countryCode": "GB",
        "partyId": "TWK",
        "type": "RFID",
        "uid": "DEADBEEF",
        "contractId": "GB-TWK-012345678-V",
        "issuer": "Thoughtworks",
        "valid": True,
        "cacheMode": "ALWAYS",
    }
    token.update(overrides)
    return token


def test_set_then_lookup_returns_the_canonical_token(client):
    """A stored token comes back with the canonical eMAID and a server-set UTC lastUpdated."""
    before = datetime.now(UTC).replace(microsecond=0)
    assert_empty(client.post("/token", json=make_token(lastUpdated="2001-01-01T00:00:00Z")), 201)
    response = client.get("/token/DEADBEEF")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    last_updated = body.pop("lastUpdated")
    assert RFC3339_Z.match(last_updated)
    stamped = datetime.strptime(last_updated, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= stamped <= datetime.now(UTC) + timedelta(seconds=1)
    assert body == {**make_token(), "contractId": "GBTWK012345678V"}


def test_optional_fields_round_trip_and_absent_ones_are_omitted(client):
    """visualNumber, groupId and languageCode come back when set and are left out, not null, when not."""
    client.post("/token", json=make_token(uid="a", visualNumber="V-1", groupId="g", languageCode="en"))
    client.post("/token", json=make_token(uid="b"))
    first = client.get("/token/a").json()
    assert (first["visualNumber"], first["groupId"], first["languageCode"]) == ("V-1", "g", "en")
    assert not {"visualNumber", "groupId", "languageCode"} & set(client.get("/token/b").json())


def test_set_token_upserts_by_uid(client):
    """Posting the same uid again replaces the token."""
    client.post("/token", json=make_token(visualNumber="old"))
    client.post("/token", json=make_token(valid=False, cacheMode="NEVER"))
    token = client.get("/token/DEADBEEF").json()
    assert (token["valid"], token["cacheMode"]) == (False, "NEVER")
    assert "visualNumber" not in token


def test_the_uid_is_matched_case_insensitively(client):
    """lookupToken finds a token whatever the case of its uid, and setToken in another case replaces it."""
    assert_empty(client.post("/token", json=make_token()), 201)
    assert client.get("/token/deadbeef").json()["uid"] == "DEADBEEF"
    assert_empty(client.post("/token", json=make_token(uid="deadbeef", valid=False)), 201)
    token = client.get("/token/DeadBeef").json()
    assert (token["uid"], token["valid"]) == ("deadbeef", False)
    assert [t["uid"] for t in client.get("/token").json()] == ["deadbeef"]


@pytest.mark.parametrize(
    ("contract_id", "canonical"),
    [
        ("gbtwk123456789", "GBTWK123456789B"),
        ("GBTWK012345678", "GBTWK012345678V"),
        ("NL-TNM-000123456", "NLTNM000123456T"),
        ("DE-8AA-CA2B3C4D5-L", "DE8AACA2B3C4D5L"),
    ],
)
def test_contract_id_is_made_canonical(client, contract_id, canonical):
    """Case, separators and a missing check digit are normalised."""
    client.post("/token", json=make_token(contractId=contract_id))
    assert client.get("/token/DEADBEEF").json()["contractId"] == canonical


@pytest.mark.parametrize(
    "contract_id",
    ["GBTWK012345678X", "xxGBTWK012345678V", "GBTWK012345678VEXTRA", "GB-TWK-01234567", "GB*TWK*012345678*V", ""],
)
def test_bad_contract_ids_are_refused(client, contract_id):
    """A wrong check digit or leading/trailing garbage is a 400 naming contractId; nothing is stored."""
    assert_status(client.post("/token", json=make_token(contractId=contract_id)), 400, "contractId")
    assert client.get("/token/DEADBEEF").status_code == 404


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("countryCode", "GBR"),
        ("partyId", "TW"),
        ("uid", "u" * 37),
        ("uid", ""),
        ("visualNumber", "v" * 65),
        ("issuer", "i" * 65),
        ("groupId", "g" * 37),
        ("languageCode", "eng"),
        ("type", "CARD"),
        ("cacheMode", "SOMETIMES"),
        ("valid", "true"),
        ("lastUpdated", "yesterday"),
        ("extra", 1),
    ],
)
def test_token_field_limits(client, field, value):
    """Every field limit of the Token schema is enforced with a 400 naming the field."""
    assert_status(client.post("/token", json=make_token(**{field: value})), 400, field)


def test_missing_required_token_fields_are_named(client):
    """A token without uid is a 400 saying uid is required."""
    token = make_token()
    del token["uid"]
    assert_status(client.post("/token", json=token), 400, "uid")


def test_lookup_of_an_unknown_token_is_404(client):
    """An unknown uid is a 404 Status naming it."""
    body = assert_status(client.get("/token/nope"), 404, "token: not found")
    assert "nope" not in body["error"]


def test_list_is_ordered_by_uid_and_paged(client):
    """Tokens are listed by uid with offset and limit, the default page being 20."""
    for uid in ["c", "a", "b", *(f"z{i:02}" for i in range(25))]:
        client.post("/token", json=make_token(uid=uid))
    assert [t["uid"] for t in client.get("/token", params={"limit": 3}).json()] == ["a", "b", "c"]
    assert [t["uid"] for t in client.get("/token", params={"offset": 2, "limit": 2}).json()] == ["c", "z00"]
    assert len(client.get("/token").json()) == 20
    assert client.get("/token", params={"offset": 1000}).json() == []


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"limit": -1}, {"offset": -1}, {"offset": "abc"}, {"limit": "1.5"}, {"page": 1}],
)
def test_list_refuses_bad_paging(client, params):
    """offset below 0, limit outside 1..100, non-integers and unknown parameters are 400."""
    assert_status(client.get("/token", params=params), 400, next(iter(params)))


def test_empty_list_is_an_empty_array(client):
    """With no tokens the list is [], not null."""
    response = client.get("/token")
    assert response.status_code == 200
    assert response.json() == []
