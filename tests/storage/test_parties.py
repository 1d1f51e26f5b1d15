"""OCPI parties on every engine: creation, compare-and-swap update, one party per identity, lookups, push results,
removal, and documents stored as data whatever keys a partner put in them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from maeve_api.storage import Conflict, NotFound

STAMP = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def make_party(**overrides: Any) -> dict[str, Any]:
    """A party document as the registration stores it."""
    party: dict[str, Any] = {
        "key": "NL*EMS",
        "roles": [{"role": "EMSP", "country_code": "NL", "party_id": "EMS", "business_details": {"name": "eMSP é"}}],
        "version": "2.2.1",
        "versions_url": "http://emsp.test/ocpi/versions",
        "endpoints": [{"identifier": "locations", "role": "RECEIVER", "url": "http://emsp.test/ocpi/locations"}],
        "outbound_token": "out-token",
        "token_encoding": "base64",
        "inbound_token_hash": "hash-in",
        "registered_at": STAMP,
    }
    party.update(overrides)
    return party


def other_party(country_code: str = "DE", party_id: str = "ABC", **overrides: Any) -> dict[str, Any]:
    """A second party, with identity country_code/party_id unless its roles are overridden."""
    roles = [{"role": "EMSP", "country_code": country_code, "party_id": party_id, "business_details": {"name": "x"}}]
    fields = {"key": f"{country_code}*{party_id}".upper(), "inbound_token_hash": "hash-other", "roles": roles}
    return make_party(**{**fields, **overrides})


def test_create_then_find_returns_the_whole_document(storage):
    """A created party comes back exactly, datetimes as UTC."""
    storage.parties.create(make_party())
    assert storage.parties.find("NL*EMS") == make_party()


def test_create_of_a_registered_key_is_a_conflict(storage):
    """create never replaces: a second party under the same key is refused and the first is kept."""
    storage.parties.create(make_party())
    with pytest.raises(Conflict):
        storage.parties.create(make_party(inbound_token_hash="hash-new", roles=[]))
    assert storage.parties.find("NL*EMS") == make_party()


@pytest.mark.parametrize(("country_code", "party_id"), [("NL", "EMS"), ("nl", "ems"), ("Nl", "eMs")])
def test_an_identity_is_held_by_one_party_only(storage, country_code, party_id):
    """A party claiming an identity another holds, in any case, is refused naming it, and nothing is stored."""
    storage.parties.create(make_party())
    claim = other_party("DE", "ABC")
    claim["roles"].append({**claim["roles"][0], "country_code": country_code, "party_id": party_id})
    with pytest.raises(Conflict) as raised:
        storage.parties.create(claim)
    assert (raised.value.kind, raised.value.key) == ("party identity", "NL*EMS")
    assert storage.parties.find("DE*ABC") is None
    assert storage.parties.find_by_identity("de", "abc") is None
    assert storage.parties.find_by_identity("nl", "ems")["key"] == "NL*EMS"


def test_update_swaps_the_document_and_its_identities(storage):
    """update replaces the party if it still has the given token hash, releasing identities it no longer lists."""
    storage.parties.create(make_party())
    moved = other_party("FR", "NEW", inbound_token_hash="hash-new")
    storage.parties.update("NL*EMS", "hash-in", {**moved, "key": "NL*EMS"})
    assert storage.parties.find("NL*EMS") == {**moved, "key": "NL*EMS"}
    assert storage.parties.find_by_inbound_token_hash("hash-in") is None
    assert storage.parties.find_by_identity("FR", "NEW")["key"] == "NL*EMS"
    assert storage.parties.find_by_identity("NL", "EMS") is None
    storage.parties.create(other_party("NL", "EMS", key="NL*EMS~2"))
    assert storage.parties.find_by_identity("NL", "EMS")["key"] == "NL*EMS~2"


def test_update_after_a_change_meanwhile_is_not_found(storage):
    """update with a token hash the party no longer has (it rotated meanwhile) raises NotFound and changes nothing."""
    storage.parties.create(make_party())
    with pytest.raises(NotFound):
        storage.parties.update("NL*EMS", "hash-stale", make_party(version="2.2", inbound_token_hash="hash-new"))
    with pytest.raises(NotFound):
        storage.parties.update("XX*XXX", "hash-in", make_party(key="XX*XXX", inbound_token_hash="hash-x"))
    assert storage.parties.all() == [make_party()]


def test_update_to_an_identity_held_by_another_party_is_a_conflict(storage):
    """update claiming another party's identity is refused; both parties stay as they were."""
    storage.parties.create(make_party())
    storage.parties.create(other_party("DE", "ABC"))
    with pytest.raises(Conflict) as raised:
        storage.parties.update("NL*EMS", "hash-in", other_party("de", "abc", inbound_token_hash="hash-new"))
    assert raised.value.key == "DE*ABC"
    assert storage.parties.find("NL*EMS") == make_party()
    assert storage.parties.find_by_identity("DE", "ABC")["key"] == "DE*ABC"


@pytest.mark.parametrize(
    "logo",
    [
        {"$date": "x"},
        {"$oid": "0123456789ab0123456789ab"},
        {"$numberLong": "1"},
        {"$ref": "tokens", "$id": "DEADBEEF"},
        {"a.b": {"$regex": "."}, "$binary": {"base64": "", "subType": "00"}},
    ],
)
def test_documents_are_stored_as_data_whatever_keys_they_hold(storage, logo):
    """Keys a partner sent, such as extended-JSON or BSON markers, come back as the same plain data."""
    party = make_party()
    party["roles"][0]["business_details"]["logo"] = logo
    storage.parties.create(party)
    storage.parties.record_push("NL*EMS", {"location_id": "loc1", "at": STAMP, "ok": True})
    assert storage.parties.find("NL*EMS") == {**party, "last_push": {"location_id": "loc1", "at": STAMP, "ok": True}}
    assert storage.parties.all()[0]["roles"][0]["business_details"]["logo"] == logo


def test_find_by_inbound_token_hash(storage):
    """A party is found by the hash of the token it calls us with, and only by that."""
    storage.parties.create(make_party())
    storage.parties.create(other_party())
    found = storage.parties.find_by_inbound_token_hash("hash-other")
    assert found is not None and found["key"] == "DE*ABC"
    assert storage.parties.find_by_inbound_token_hash("hash") is None


def test_unknown_party(storage):
    """find is None and get raises NotFound naming the party."""
    assert storage.parties.find("XX*XXX") is None
    with pytest.raises(NotFound) as raised:
        storage.parties.get("XX*XXX")
    assert (raised.value.kind, raised.value.key) == ("party", "XX*XXX")


def test_all_is_ordered_by_key(storage):
    """all() lists every party in key order."""
    storage.parties.create(make_party())
    storage.parties.create(other_party("DE", "ABC"))
    storage.parties.create(other_party("GB", "ZZZ", inbound_token_hash="h3"))
    assert [party["key"] for party in storage.parties.all()] == ["DE*ABC", "GB*ZZZ", "NL*EMS"]


def test_record_push_keeps_the_rest(storage):
    """record_push sets last_push and leaves the other fields; an unknown party is ignored."""
    storage.parties.create(make_party())
    result = {"location_id": "loc1", "at": STAMP, "ok": False, "detail": "HTTP 503"}
    storage.parties.record_push("NL*EMS", result)
    storage.parties.record_push("XX*XXX", result)
    assert storage.parties.find("NL*EMS") == {**make_party(), "last_push": result}
    assert storage.parties.find("XX*XXX") is None


def test_remove_is_idempotent(storage):
    """remove deletes the party; removing it again is harmless."""
    storage.parties.create(make_party())
    storage.parties.remove("NL*EMS")
    storage.parties.remove("NL*EMS")
    assert storage.parties.find("NL*EMS") is None
    assert storage.parties.all() == []
    assert storage.parties.find_by_identity("NL", "EMS") is None
    storage.parties.create(other_party("NL", "EMS"))


def test_page_and_count_follow_the_key_order(storage):
    """page() pages the parties in key order, as all() lists them; count() counts them."""
    keys = ["NL*EMS", "DE*ABC", "FR*XYZ", "BE*AAA"]
    for n, key in enumerate(keys):
        country_code, party_id = key.split("*")
        storage.parties.create(other_party(country_code, party_id, inbound_token_hash=f"hash-{n}"))
    assert [p["key"] for p in storage.parties.page(0, 10)] == sorted(keys)
    assert [p["key"] for p in storage.parties.page(1, 2)] == sorted(keys)[1:3]
    assert storage.parties.page(4, 10) == [] and storage.parties.page(0, 0) == []
    assert storage.parties.page(0, 10) == storage.parties.all()
    assert storage.parties.count() == 4
