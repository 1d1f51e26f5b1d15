"""listParties pages through the store: parties by key, then registrations, never every party loaded."""

from __future__ import annotations

import pytest

from maeve_api.ocpi.parties import list_parties
from tests.storage.test_parties import other_party

PARTIES = ["AA*AAA", "BB*BBB", "CC*CCC"]
REGISTRATIONS = ["r1", "r2"]


@pytest.fixture
def listed_store(storage, monkeypatch):
    for n, key in enumerate(PARTIES):
        country_code, party_id = key.split("*")
        storage.parties.create(other_party(country_code, party_id, inbound_token_hash=f"hash-{n}"))
    for token_hash in REGISTRATIONS:
        storage.registrations.put(token_hash, "PENDING")

    def loading_everything():
        raise AssertionError("listParties loaded every party")

    monkeypatch.setattr(storage.parties, "all", loading_everything)
    return storage


def _shown(entries):
    return [entry.get("key", entry["kind"]) for entry in entries]


@pytest.mark.parametrize(
    ("offset", "limit", "expected"),
    [
        (0, 20, [*PARTIES, "registration", "registration"]),
        (0, 2, PARTIES[:2]),
        (2, 2, [PARTIES[2], "registration"]),
        (3, 1, ["registration"]),
        (4, 5, ["registration"]),
        (5, 5, []),
        (50, 5, []),
    ],
)
def test_pages_run_through_parties_then_registrations(listed_store, offset, limit, expected):
    """Every page holds what the whole list would at that position, on every engine."""
    assert _shown(list_parties(listed_store, offset, limit)) == expected
