"""Party identity claims on MongoDB, where a party is written in two steps (its identities, then its document) and
the claims of a writer that died between them are freed after a while on the database server's clock, never on a
worker's own. (SQLite writes a party in one transaction: there is no claim to abandon.)"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from maeve_api.storage import Conflict
from maeve_api.storage import _documents as docs
from maeve_api.storage.mongo import parties as mongo_parties
from tests.conftest import MONGODB_URI_VARIABLE, NO_SERVER_CLOCK
from tests.storage.test_parties import make_party, other_party

MONGO_ENGINES = ["mongomock", "nx27017", "mongoeco", "mongodb"]

#: How far off the clock of the second worker (another host) runs, either way.
SKEW = timedelta(minutes=5)


@pytest.fixture
def mongo_storage(engine: str, make_storage: Callable[[str], Any]) -> Any:
    if engine == "mongodb" and not os.environ.get(MONGODB_URI_VARIABLE):
        pytest.skip(f"{MONGODB_URI_VARIABLE} is not set")
    return make_storage(engine)


class _Between:
    """The parties collection of a worker that runs ``meanwhile`` after it claimed the identities of a party and
    before it writes the party's document (once), as another worker may while this one is slow or dies there."""

    def __init__(self, collection: Any, meanwhile: Callable[[], None]) -> None:
        self._collection = collection
        self._meanwhile: Callable[[], None] | None = meanwhile

    def insert_one(self, document: Any, *args: Any, **kwargs: Any) -> Any:
        meanwhile, self._meanwhile = self._meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return self._collection.insert_one(document, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)


def _rival() -> dict[str, Any]:
    """A party of another key that also claims make_party's identity NL*EMS."""
    rival = other_party("DE", "ABC")
    rival["roles"].append({**rival["roles"][0], "country_code": "NL", "party_id": "EMS"})
    return rival


@pytest.mark.parametrize("engine", MONGO_ENGINES)
def test_a_live_claim_is_not_taken_by_a_worker_whose_clock_runs_minutes_ahead(mongo_storage, engine, monkeypatch):
    """While one worker is between claiming NL*EMS and writing its party, another whose clock runs 5 minutes ahead
    (past the 60 s after which an abandoned claim is free, on its clock) is refused the identity; the first worker's
    party is then registered, alone with it."""
    refused: list[Conflict] = []
    real_now = docs.now

    def another_worker_registers_meanwhile() -> None:
        with monkeypatch.context() as ahead:
            ahead.setattr(docs, "now", lambda: real_now() + SKEW)
            try:
                mongo_storage.parties.create(_rival())
            except Conflict as error:
                refused.append(error)

    parties = mongo_storage.parties
    monkeypatch.setattr(parties, "_parties", _Between(parties._parties, another_worker_registers_meanwhile))
    parties.create(make_party())
    assert [(error.kind, error.key) for error in refused] == [("party identity", "NL*EMS")]
    assert parties.find_by_identity("NL", "EMS")["key"] == "NL*EMS"
    assert [party["key"] for party in parties.all()] == ["NL*EMS"]
    assert parties.find_by_identity("DE", "ABC") is None


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
@pytest.mark.parametrize("engine", MONGO_ENGINES)
def test_an_abandoned_claim_is_free_on_the_servers_clock_for_a_worker_whose_clock_runs_behind(
    mongo_storage, engine, monkeypatch
):
    """A worker dies between claiming NL*EMS and writing its party; once the claim's time is over on the database's
    clock, a worker whose clock runs 5 minutes behind registers another party with NL*EMS at once."""
    monkeypatch.setattr(mongo_parties, "_STALE_CLAIM_MS", 1000)  # instead of 60 s
    parties = mongo_storage.parties

    def dies() -> None:
        raise SystemExit("the worker died")

    monkeypatch.setattr(parties, "_parties", _Between(parties._parties, dies))
    with pytest.raises(SystemExit):
        parties.create(make_party())
    monkeypatch.setattr(parties, "_parties", parties._parties._collection)
    with pytest.raises(Conflict):  # the claim is still live
        parties.create(_rival())
    real_now = docs.now
    monkeypatch.setattr(docs, "now", lambda: real_now() - SKEW)
    deadline = real_now() + timedelta(seconds=3)
    while True:
        try:
            parties.create(_rival())
            break
        except Conflict:
            assert real_now() < deadline, "the abandoned claim is still held"
            time.sleep(0.1)
    assert parties.find_by_identity("NL", "EMS")["key"] == "DE*ABC"
    assert [party["key"] for party in parties.all()] == ["DE*ABC"]
