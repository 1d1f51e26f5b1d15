"""OCPI registrations on every engine: default status, status changes and idempotent removal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import NO_SERVER_CLOCK


def test_put_without_status_stores_a_new_token_as_pending(storage):
    """put(token, None) for a new token stores it with status PENDING."""
    storage.registrations.put("tok-1", None)
    assert storage.registrations.find("tok-1") == {"token_hash": "tok-1", "status": "PENDING"}


@pytest.mark.parametrize("status", ["PENDING", "REGISTERED"])
def test_put_without_status_keeps_an_existing_status(storage, status):
    """put(token, None) for a stored token never changes its status."""
    storage.registrations.put("tok-1", status)
    storage.registrations.put("tok-1", None)
    storage.registrations.put("tok-1", None)
    assert storage.registrations.find("tok-1") == {"token_hash": "tok-1", "status": status}


@pytest.mark.parametrize("status", ["PENDING", "REGISTERED"])
def test_put_with_status_stores_it_for_a_new_token(storage, status):
    """put(token, status) for a new token stores that status."""
    storage.registrations.put("tok-1", status)
    assert storage.registrations.find("tok-1") == {"token_hash": "tok-1", "status": status}


def test_put_with_status_changes_an_existing_status(storage):
    """put(token, status) sets the status of a stored token, in either direction."""
    storage.registrations.put("tok-1", None)
    storage.registrations.put("tok-1", "REGISTERED")
    assert storage.registrations.find("tok-1") == {"token_hash": "tok-1", "status": "REGISTERED"}
    storage.registrations.put("tok-1", "PENDING")
    assert storage.registrations.find("tok-1") == {"token_hash": "tok-1", "status": "PENDING"}


def test_registrations_of_other_tokens_stay_apart(storage):
    """Changing one token's registration leaves the others alone."""
    storage.registrations.put("tok-1", "REGISTERED")
    storage.registrations.put("tok-2", None)
    storage.registrations.put("TOK-1", "PENDING")
    assert storage.registrations.find("tok-1") == {"token_hash": "tok-1", "status": "REGISTERED"}
    assert storage.registrations.find("tok-2") == {"token_hash": "tok-2", "status": "PENDING"}


def test_find_of_an_unknown_token_is_none(storage):
    """find returns None for a token that was never stored."""
    storage.registrations.put("tok-1", None)
    assert storage.registrations.find("tok-2") is None


def test_remove_deletes_the_registration(storage):
    """After remove the token is not found and another token is still there."""
    storage.registrations.put("tok-1", "REGISTERED")
    storage.registrations.put("tok-2", "REGISTERED")
    storage.registrations.remove("tok-1")
    assert storage.registrations.find("tok-1") is None
    assert storage.registrations.find("tok-2") == {"token_hash": "tok-2", "status": "REGISTERED"}


def test_remove_is_idempotent(storage):
    """Removing a token twice, or one never stored, raises nothing."""
    storage.registrations.put("tok-1", None)
    storage.registrations.remove("tok-1")
    storage.registrations.remove("tok-1")
    storage.registrations.remove("never-stored")
    assert storage.registrations.find("tok-1") is None


def test_put_after_remove_starts_again_as_pending(storage):
    """A removed registration stored again without status is PENDING, not its old status."""
    storage.registrations.put("tok-1", "REGISTERED")
    storage.registrations.remove("tok-1")
    storage.registrations.put("tok-1", None)
    assert storage.registrations.find("tok-1") == {"token_hash": "tok-1", "status": "PENDING"}


def test_registrations_page_in_key_order(storage):
    """page lists registrations with their status, in the order of their key, offset and limit applied."""
    for token in ("t3", "t1", "t2"):
        storage.registrations.put(token, "REGISTERED" if token == "t2" else None)
    assert [r["status"] for r in storage.registrations.page(0, 10)] == ["PENDING", "REGISTERED", "PENDING"]
    assert len(storage.registrations.page(1, 1)) == 1
    assert storage.registrations.page(3, 10) == []


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
def test_identity_and_expiry_are_stored_and_kept(storage):
    """The identity is stored and the expiry set that long from now on the store's clock; a later put without
    them keeps them."""
    before = datetime.now(UTC).replace(microsecond=0)
    storage.registrations.put("tok-1", "REGISTERED", ("nl", "EMS"), expires_in=timedelta(minutes=5))
    after = datetime.now(UTC)
    storage.registrations.put("tok-1", None)
    found = storage.registrations.find("tok-1")
    expires = found.pop("expires_at")
    assert found == {"token_hash": "tok-1", "status": "REGISTERED", "country_code": "nl", "party_id": "EMS"}
    # The store's clock is this host's, or a database server's on this host: the same within a second.
    assert before - timedelta(seconds=1) <= expires - timedelta(minutes=5) <= after + timedelta(seconds=1)


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
def test_an_expired_registration_is_never_found(storage):
    """A registration whose expiry has come is not found, as if it had been removed; a put of an expiry without
    a status keeps the status."""
    storage.registrations.put("tok-1", "PENDING", expires_in=timedelta(0))
    storage.registrations.put("tok-2", "REGISTERED")
    storage.registrations.put("tok-2", None, expires_in=timedelta(minutes=1))
    assert storage.registrations.find("tok-1") is None
    assert storage.registrations.page(0, 10) == [storage.registrations.find("tok-2")]
    assert storage.registrations.find("tok-2")["status"] == "REGISTERED"
