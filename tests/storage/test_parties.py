"""OCPI parties on every engine: whole-document upsert, lookup by inbound token hash, push results, removal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from maeve_api.storage import NotFound

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
        "inbound_token": "in-token",
        "inbound_token_hash": "hash-in",
        "registered_at": STAMP,
    }
    party.update(overrides)
    return party


def test_put_then_find_returns_the_whole_document(storage):
    """A stored party comes back exactly, datetimes as UTC."""
    storage.parties.put(make_party())
    assert storage.parties.find("NL*EMS") == make_party()


def test_put_replaces_the_whole_document(storage):
    """Putting a party again replaces every field, including its inbound token hash."""
    storage.parties.put(make_party())
    storage.parties.put(make_party(version="2.2", endpoints=[], inbound_token_hash="hash-new"))
    assert storage.parties.find("NL*EMS") == make_party(version="2.2", endpoints=[], inbound_token_hash="hash-new")
    assert storage.parties.find_by_inbound_token_hash("hash-in") is None


def test_find_by_inbound_token_hash(storage):
    """A party is found by the hash of the token it calls us with, and only by that."""
    storage.parties.put(make_party())
    storage.parties.put(make_party(key="DE*ABC", inbound_token_hash="hash-other"))
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
    for key, token_hash in (("NL*EMS", "h1"), ("DE*ABC", "h2"), ("GB*ZZZ", "h3")):
        storage.parties.put(make_party(key=key, inbound_token_hash=token_hash))
    assert [party["key"] for party in storage.parties.all()] == ["DE*ABC", "GB*ZZZ", "NL*EMS"]


def test_record_push_keeps_the_rest(storage):
    """record_push sets last_push and leaves the other fields; an unknown party is ignored."""
    storage.parties.put(make_party())
    result = {"location_id": "loc1", "at": STAMP, "ok": False, "detail": "HTTP 503"}
    storage.parties.record_push("NL*EMS", result)
    storage.parties.record_push("XX*XXX", result)
    assert storage.parties.find("NL*EMS") == {**make_party(), "last_push": result}
    assert storage.parties.find("XX*XXX") is None


def test_remove_is_idempotent(storage):
    """remove deletes the party; removing it again is harmless."""
    storage.parties.put(make_party())
    storage.parties.remove("NL*EMS")
    storage.parties.remove("NL*EMS")
    assert storage.parties.find("NL*EMS") is None
    assert storage.parties.all() == []
