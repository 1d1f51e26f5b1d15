"""No request the spec admits makes a record anywhere near MongoDB's 16 MB document limit, even with the body limit
at its highest: the spec's bounds, not the body limit, cap every stored document.

The store's own 413 (a document over 16 MB, ``tests/storage/test_sizes.py``) is therefore unreachable through the
API: the largest location, the largest record a request stores in one document, is stored whole, well under the
limit, and one past any bound is a 400 naming it.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
import pytest
import requests
from pymongo import MongoClient
from pymongo.uri_parser import parse_uri

from tests.conftest import answering, module_store_url, start_gunicorn_process

#: The highest MAEVE_MAX_BODY_BYTES the settings allow.
LARGEST_BODY_LIMIT = 64 * 1024 * 1024
#: Far below MongoDB's 16 MiB; the largest location measures 0.48 MB as BSON and 0.60 MB as SQLite's JSON.
STORED_CEILING = 2 * 1024 * 1024
#: A character of four bytes in UTF-8 (and a surrogate pair, twelve bytes, in ASCII-only JSON).
WIDE = "\U0001d11e"
#: A control character: one byte in UTF-8, six (\u0001) in JSON.
CONTROL = "\u0001"
#: The widest printable ASCII character, for the ids that must be OCPI CiStrings: one byte, two (\") in JSON.
QUOTE = '"'


def _text(length: int, prefix: str = "", wide: str = WIDE) -> str:
    return prefix + wide * (length - len(prefix))


def largest_location() -> dict[str, Any]:
    """The largest location the spec admits: every list at its longest, every free string at its longest in the
    widest characters, every other value its longest choice."""
    connector = {
        "standard": "IEC_60309_2_single_16",
        "format": "SOCKET",
        "power_type": "AC_1_PHASE",
        "max_voltage": 2147483647,
        "max_amperage": 2147483647,
    }
    return {
        "country_code": "GB",
        "party_id": "TWK",
        "name": CONTROL * 255,
        "address": _text(45),
        "city": _text(45),
        "postal_code": CONTROL * 10,
        "country": "GBR",
        "coordinates": {"latitude": "-89.123456", "longitude": "-179.123456"},
        "parking_type": "UNDERGROUND_GARAGE",
        "time_zone": "America/Argentina/ComodRivadavia",  # the longest IANA name
        "evses": [
            {
                "uid": _text(36, f"{e:03d}", QUOTE),
                "evse_id": _text(48, wide=QUOTE),
                "connectors": [{"id": _text(36, f"{c:02d}", QUOTE), **connector} for c in range(24)],
            }
            for e in range(100)
        ],
    }


@pytest.fixture(scope="module", params=["sqlite", "nx27017"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return module_store_url(request, tmp_path_factory, "sizes")


@pytest.fixture(scope="module")
def api(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """gunicorn on the store with the body limit at its highest; the internal API's base URL."""
    log = tmp_path_factory.mktemp("gunicorn-sizes") / "gunicorn.log"
    environment = {"MAEVE_WORKERS": "1", "MAEVE_LOG_LEVEL": "warning", "MAEVE_MAX_BODY_BYTES": str(LARGEST_BODY_LIMIT)}
    process, ports = start_gunicorn_process(database_url, log, environment, forked=True)
    url = f"http://127.0.0.1:{ports['api']}"
    try:
        if not answering(process, [f"{url}/ready"], 60.0):
            raise RuntimeError(f"gunicorn did not become ready; its log:\n{log.read_text(errors='replace')[-3000:]}")
        yield f"{url}/api/v0"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _stored_bytes(database_url: str, location_id: str) -> int:
    """The size of the location's stored document: its BSON on MongoDB, its JSON text on SQLite."""
    if database_url.startswith("sqlite:"):
        import sqlite3

        with sqlite3.connect(Path(database_url.removeprefix("sqlite:///"))) as connection:
            row = connection.execute(
                "SELECT length(CAST(document AS BLOB)) FROM locations WHERE id = ?", (location_id,)
            )
            return int(row.fetchone()[0])
    client: MongoClient[dict[str, Any]] = MongoClient(database_url, serverSelectionTimeoutMS=5000)
    try:
        stored = client[parse_uri(database_url)["database"] or "maeve"]["locations"].find_one({"_id": location_id})
        assert stored is not None
        return len(bson.encode(stored))
    finally:
        client.close()


def test_the_largest_location_the_spec_admits_is_stored_whole_far_below_16_mb(api, database_url):
    """Sent as ASCII-only JSON (0.56 MB), it is a 201, reads back as sent, and its stored document is under 2 MiB
    on either engine."""
    location = largest_location()
    body = json.dumps(location).encode()
    response = requests.post(f"{api}/location/big", data=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert response.status_code == 201, response.text
    stored = requests.get(f"{api}/location/big", timeout=60).json()["location"]
    assert stored["name"] == location["name"]
    assert [e["uid"] for e in stored["evses"]] == [e["uid"] for e in location["evses"]]
    assert stored["evses"][99]["connectors"][23]["id"] == location["evses"][99]["connectors"][23]["id"]
    assert _stored_bytes(database_url, "big") < STORED_CEILING


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda loc: loc["evses"].append(loc["evses"][0]), "evses: must have at most 100 items"),
        (
            lambda loc: loc["evses"][0]["connectors"].append({**loc["evses"][0]["connectors"][0], "id": "x"}),
            "evses[0].connectors: must have at most 24 items",
        ),
        (lambda loc: loc.update(name=loc["name"] + "x"), "name: must be at most 255 characters long"),
        (
            lambda loc: loc["evses"][5].update(uid=loc["evses"][5]["uid"] + "x"),
            "evses[5].uid: must be at most 36 characters long",
        ),
    ],
    ids=["evses", "connectors", "name", "evse uid"],
)
def test_one_past_a_bound_is_a_400_naming_it_and_stores_nothing(api, change, error):
    """The largest location with one list or string one longer is refused whole, naming only that field."""
    location = largest_location()
    change(location)
    response = requests.post(f"{api}/location/over", json=location, timeout=60)
    assert response.status_code == 400, response.text
    assert response.json() == {"status": "Bad Request", "error": error}
    assert requests.get(f"{api}/location/over", timeout=10).status_code == 404
