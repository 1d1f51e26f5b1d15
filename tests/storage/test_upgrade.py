"""Upgrades keep data: stores written by release 2 (``data/release_2*``, dumped from that release's repositories)
open with this release, idempotently, with tokens found case-insensitively and inbound OCPI tokens kept only as
hashes.

The dumps hold tokens ``DEADBEEF``, and ``r9card`` and ``R9CARD`` (two records release 2 kept apart), two
token A registrations, the party NL*EMS with its inbound token in clear text, and the location loc1.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mongomock_ng as mongomock
import pytest
from bson import json_util
from pymongo import MongoClient

from maeve_api.ocpi.registration import token_hash
from maeve_api.storage import Storage
from maeve_api.storage.mongo import MongoStorage
from maeve_api.storage.sqlite import SqliteStorage

DATA = Path(__file__).parent / "data"
CLEAR_TOKENS = ("release-2-token-a-pending", "release-2-token-a-registered", "release-2-inbound-token-c")


def _sqlite(tmp_path: Path) -> Path:
    path = tmp_path / "release-2.db"
    connection = sqlite3.connect(path)
    connection.executescript((DATA / "release_2.sql").read_text())
    connection.close()
    return path


def _mongo(client: MongoClient[Any], database: str) -> None:
    dump = json_util.loads((DATA / "release_2_mongo.json").read_text())
    for name, documents in dump.items():
        if documents:
            client[database][name].insert_many(documents)


def _assert_upgraded(store: Storage) -> None:
    """What a release 2 store holds, as this release reads it."""
    assert store.tokens.find("deadbeef")["uid"] == "DEADBEEF"
    assert store.tokens.find_by_contract_id("GBTWK012345678V") is not None
    r9 = store.tokens.get("R9card")
    assert (r9["uid"], r9["country_code"].upper(), r9["party_id"].upper()) == ("r9card", "FR", "AT9")
    assert [token["uid"] for token in store.tokens.page(0, 10)] == ["DEADBEEF", "r9card"]
    assert store.tokens.put_owned({**r9, "country_code": "fr", "party_id": "at9"}) is False
    assert store.registrations.find(token_hash("release-2-token-a-pending"))["status"] == "PENDING"
    assert store.registrations.find(token_hash("release-2-token-a-registered"))["status"] == "REGISTERED"
    party = store.parties.find_by_inbound_token_hash(token_hash("release-2-inbound-token-c"))
    assert party is not None and "inbound_token" not in party
    assert party["registered_at"] == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert party["last_push"]["at"] == datetime(2026, 1, 3, tzinfo=UTC)
    assert party["roles"][0]["business_details"]["logo"]["category"] == "OPERATOR"
    assert store.parties.find_by_identity("nl", "ems")["key"] == "NL*EMS"
    location = store.locations.get("loc1")
    assert isinstance(location["last_updated"], datetime)
    assert isinstance(location["evses"][0]["connectors"][0]["last_updated"], datetime)


def test_a_release_2_sqlite_database_is_upgraded_and_keeps_its_data(tmp_path):
    """Opened by this release, a release 2 SQLite file keeps every record, its clear-text tokens gone from the file."""
    path = _sqlite(tmp_path)
    for _ in range(2):  # the second open finds the upgrade done
        store = SqliteStorage(path)
        try:
            _assert_upgraded(store)
        finally:
            store.close()
    stored = b"".join(file.read_bytes() for file in tmp_path.iterdir() if file.name.startswith("release-2.db"))
    for token in CLEAR_TOKENS:
        assert token.encode() not in stored


@pytest.mark.parametrize("engine", ["mongomock", "nx27017"])
def test_a_release_2_mongo_database_is_upgraded_and_keeps_its_data(request, engine):
    """Opened by this release, a release 2 MongoDB database keeps every record and no clear-text inbound token."""
    client: MongoClient[Any] = (
        mongomock.MongoClient() if engine == "mongomock" else request.getfixturevalue("nx_client")
    )
    database = f"release_2_{engine}"
    client.drop_database(database)
    _mongo(client, database)
    try:
        for _ in range(2):
            _assert_upgraded(MongoStorage(client, database))
        documents = str(
            {name: list(client[database][name].find()) for name in client[database].list_collection_names()}
        )
        for token in CLEAR_TOKENS:
            assert token not in documents
    finally:
        client.drop_database(database)
