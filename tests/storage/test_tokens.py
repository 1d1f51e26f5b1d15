"""Authorization tokens on every engine: upsert by uid, lookup, timestamps and paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from maeve_api.storage import Conflict, NotFound
from tests.storage.conftest import assert_not_found, assert_utc, make_token

OPTIONAL = {"visual_number": "V-0001", "group_id": "fleet-7", "language_code": "de"}


def test_put_then_find_returns_the_whole_token(storage):
    """A stored token comes back whole, optional fields included."""
    storage.tokens.put(make_token(**OPTIONAL))
    assert storage.tokens.find("DEADBEEF") == make_token(**OPTIONAL)


def test_optional_fields_not_set_are_absent(storage):
    """Optional fields that were not given, or given as None, are left out of the token, not None."""
    storage.tokens.put(make_token(uid="a"))
    storage.tokens.put(make_token(uid="b", visual_number=None, group_id=None, language_code=None))
    assert storage.tokens.find("a") == make_token(uid="a")
    assert storage.tokens.find("b") == make_token(uid="b")


def test_put_replaces_the_whole_token(storage):
    """A second put of the same uid replaces every field: an optional field not given again is gone."""
    storage.tokens.put(make_token(**OPTIONAL))
    replacement = make_token(valid=False, cache_mode="NEVER", issuer="Other", group_id="fleet-8")
    storage.tokens.put(replacement)
    assert storage.tokens.find("DEADBEEF") == replacement
    assert storage.tokens.page(0, 10) == [replacement]


def test_put_keeps_tokens_of_other_uids(storage):
    """Putting one uid leaves tokens with other uids alone."""
    storage.tokens.put(make_token(uid="a", **OPTIONAL))
    storage.tokens.put(make_token(uid="b"))
    assert storage.tokens.find("a") == make_token(uid="a", **OPTIONAL)


def test_undocumented_keys_are_not_stored(storage):
    """Keys outside the token document are dropped, and valid is stored as a bool."""
    storage.tokens.put(make_token(valid=1, _id="other", extra="x", lastUpdated="now"))
    stored = storage.tokens.find("DEADBEEF")
    assert stored == make_token()
    assert stored["valid"] is True


def test_find_of_an_unknown_uid_is_none(storage):
    """find returns None for a uid that was never stored."""
    storage.tokens.put(make_token())
    assert storage.tokens.find("DEADBEEF0") is None


def test_uids_are_matched_case_insensitively(storage):
    """find and get match the uid in any case; a put under another case replaces the token, keeping the new uid."""
    storage.tokens.put(make_token(uid="DeadBeef"))
    assert storage.tokens.find("deadbeef") == make_token(uid="DeadBeef")
    assert storage.tokens.get("DEADBEEF")["uid"] == "DeadBeef"
    storage.tokens.put(make_token(uid="deadbeef", valid=False))
    assert storage.tokens.page(0, 10) == [make_token(uid="deadbeef", valid=False)]


def test_get_returns_the_token(storage):
    """get returns the same token as find when it exists."""
    storage.tokens.put(make_token())
    assert storage.tokens.get("DEADBEEF") == make_token()


def test_get_of_an_unknown_uid_raises_not_found(storage):
    """get raises NotFound("token", uid) for a uid that was never stored."""
    with pytest.raises(NotFound) as raised:
        storage.tokens.get("nope")
    assert_not_found(raised.value, "token", "nope")


def test_last_updated_comes_back_utc_at_millisecond_precision(storage):
    """A timestamp in another zone with microseconds comes back as the same instant in UTC, truncated to ms."""
    given = datetime(2024, 5, 6, 9, 8, 9, 123999, tzinfo=timezone(timedelta(hours=2)))
    storage.tokens.put(make_token(last_updated=given))
    last_updated = storage.tokens.get("DEADBEEF")["last_updated"]
    assert_utc(last_updated)
    assert last_updated == datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    assert storage.tokens.page(0, 1)[0]["last_updated"] == last_updated


def test_page_orders_by_canonical_uid_in_code_point_order(storage):
    """page() sorts uids by their upper-case form in code-point order, whatever case they were stored in."""
    uids = ("b", "A", "0", "10", "9", "Z", "a b", "a-b", "~", "_x")
    for uid in uids:
        storage.tokens.put(make_token(uid=uid))
    assert [token["uid"] for token in storage.tokens.page(0, 100)] == sorted(uids, key=str.upper)


def test_page_returns_whole_tokens(storage):
    """page() returns the same documents as find, optional fields absent where not set."""
    storage.tokens.put(make_token(uid="a", **OPTIONAL))
    storage.tokens.put(make_token(uid="b"))
    assert storage.tokens.page(0, 10) == [make_token(uid="a", **OPTIONAL), make_token(uid="b")]


@pytest.mark.parametrize(
    ("offset", "limit", "expected"),
    [
        (0, 3, ["t0", "t1", "t2"]),
        (2, 2, ["t2", "t3"]),
        (3, 10, ["t3", "t4"]),
        (0, 5, ["t0", "t1", "t2", "t3", "t4"]),
        (4, 1, ["t4"]),
        (5, 1, []),
        (50, 10, []),
        (0, 0, []),
        (2, 0, []),
    ],
)
def test_page_applies_offset_then_limit(storage, offset, limit, expected):
    """page(offset, limit) skips offset tokens and returns at most limit; past the end or limit 0 gives []."""
    for uid in ("t3", "t0", "t4", "t1", "t2"):
        storage.tokens.put(make_token(uid=uid))
    assert [token["uid"] for token in storage.tokens.page(offset, limit)] == expected


def test_page_of_an_empty_store_is_empty(storage):
    """page() of a store without tokens is []."""
    assert storage.tokens.page(0, 20) == []


@pytest.mark.parametrize(("offset", "limit"), [(-1, 10), (0, -1), (-5, -5)])
def test_page_rejects_negative_offset_or_limit(storage, offset, limit):
    """A negative offset or limit raises ValueError."""
    storage.tokens.put(make_token())
    with pytest.raises(ValueError, match="must not be negative"):
        storage.tokens.page(offset, limit)


def test_put_owned_creates_then_replaces_for_the_same_owner_and_type(storage):
    """put_owned creates a new token (True), then replaces it for the same owner in any case (False)."""
    assert storage.tokens.put_owned(make_token(uid="r9card")) is True
    assert storage.tokens.put_owned(make_token(uid="R9CARD", country_code="gb", party_id="twk", valid=False)) is False
    assert storage.tokens.get("r9card") == make_token(uid="R9CARD", country_code="gb", party_id="twk", valid=False)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [({"country_code": "FR", "party_id": "AT9"}, "belongs to another party"), ({"type": "APP_USER"}, "type RFID")],
)
def test_put_owned_refuses_another_owner_or_type_and_writes_nothing(storage, overrides, reason):
    """A token of another party or type under the same uid (in any case) is a Conflict, and nothing changes."""
    storage.tokens.put(make_token(uid="r9card"))
    with pytest.raises(Conflict) as raised:
        storage.tokens.put_owned(make_token(uid="R9CARD", valid=False, **overrides))
    assert (raised.value.kind, raised.value.key) == ("token", "R9CARD")
    assert reason in raised.value.reason
    assert storage.tokens.get("r9card") == make_token(uid="r9card")


def test_patch_changes_only_the_given_fields(storage):
    """patch sets the changes (None removes an optional field) and keeps the rest; it returns the result."""
    storage.tokens.put(make_token(visual_number="V1", group_id="G1"))
    patched = storage.tokens.patch("deadbeef", ("gb", "twk"), "RFID", {"valid": False, "visual_number": None})
    expected = make_token(valid=False, group_id="G1")
    assert patched == expected
    assert storage.tokens.get("DEADBEEF") == expected


@pytest.mark.parametrize(("owner", "token_type"), [(("FR", "AT9"), "RFID"), (("GB", "TWK"), "APP_USER")])
def test_patch_of_another_owner_or_type_is_not_found(storage, owner, token_type):
    """patch finds no token of another owner or type, and changes nothing."""
    storage.tokens.put(make_token())
    with pytest.raises(NotFound):
        storage.tokens.patch("DEADBEEF", owner, token_type, {"valid": False})
    assert storage.tokens.get("DEADBEEF") == make_token()


def test_find_by_contract_id_uses_the_normalised_emaid(storage):
    """find_by_contract_id finds the token by its emaid, whatever its contract_id as sent; None when unknown."""
    storage.tokens.put(make_token(uid="A1", contract_id="nl-ems-c12345678", emaid="NLEMSC12345678O"))
    storage.tokens.put(make_token(uid="A2", contract_id="not an emaid"))
    assert storage.tokens.find_by_contract_id("NLEMSC12345678O")["uid"] == "A1"
    assert storage.tokens.find_by_contract_id("not an emaid") is None


def test_ocpi_fields_are_kept(storage):
    """energy_contract and default_profile_type are stored and come back as given."""
    token = make_token(energy_contract={"supplier_name": "Green", "contract_id": "E1"}, default_profile_type="GREEN")
    storage.tokens.put(token)
    assert storage.tokens.get("DEADBEEF") == token
