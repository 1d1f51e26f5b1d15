"""Write the data of the previous release (commit 64d0397) that the upgrade tests open with this one.

Run with that release's code first on the path, from a checkout of it laid out as installed
(``maeve_api`` with ``spec``, ``handlers`` and ``storage`` inside)::

    PYTHONPATH=/path/to/release/package python tests/upgrade/make_previous_release_data.py tests/upgrade/data

It writes ``previous.db`` (SQLite) and ``previous-mongo.json`` (every MongoDB collection as extended JSON).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mongomock_ng as mongomock
from bson import json_util

from maeve_api.schemas import LOCATION, TOKEN
from maeve_api.storage.mongo import MongoStorage
from maeve_api.storage.sqlite import SqliteStorage

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PARTY = {
    "key": "NL*EMS",
    "roles": [{"role": "EMSP", "country_code": "NL", "party_id": "EMS", "business_details": {"name": "eMSP"}}],
    "version": "2.2.1",
    "versions_url": "https://emsp.example.com/ocpi/versions",
    "endpoints": [
        {"identifier": "credentials", "role": "RECEIVER", "url": "https://emsp.example.com/ocpi/2.2.1/credentials"},
        {"identifier": "locations", "role": "RECEIVER", "url": "https://emsp.example.com/ocpi/2.2.1/locations"},
    ],
    "outbound_token": "token-c-issued-by-the-emsp",
    "token_encoding": "base64",
    "inbound_token": "token-the-emsp-calls-us-with",
    "inbound_token_hash": "0" * 64,
    "registered_at": T0,
}
LOCATION_BODY = {
    "id": "loc1",
    "country_code": "GB",
    "party_id": "TWK",
    "name": "Gridlink",
    "address": "1 Main Street",
    "city": "London",
    "country": "GBR",
    "coordinates": {"latitude": "51.53146", "longitude": "-0.12360"},
    "evses": [
        {
            "uid": "cs001-1",
            "connectors": [
                {
                    "id": "1",
                    "standard": "IEC_62196_T2",
                    "format": "SOCKET",
                    "power_type": "AC_3_PHASE",
                    "max_voltage": 400,
                    "max_amperage": 32,
                }
            ],
        },
        {"uid": "cs001-2", "connectors": []},
    ],
}
TOKEN_BODY = {
    "countryCode": "GB",
    "partyId": "TWK",
    "type": "RFID",
    "uid": "DEADBEEF",
    "contractId": "GB-TWK-012345678",
    "issuer": "Thoughtworks",
    "valid": True,
    "cacheMode": "ALWAYS",
}


def write(storage) -> None:
    storage.charge_stations.put_auth("cs001", {"security_profile": 1, "password_hash": "x" * 43 + "="})
    storage.tokens.put(TOKEN.load(TOKEN_BODY))
    storage.registrations.put("token-a-pending", None)
    storage.registrations.put("token-registered", "REGISTERED")
    storage.locations.put(LOCATION.load(LOCATION_BODY))
    storage.locations.put(LOCATION.load({**LOCATION_BODY, "id": "loc2", "evses": []}))
    storage.parties.put(PARTY)
    storage.pushes.enqueue("NL*EMS", "loc1", T0)
    storage.pushes.enqueue("NL*EMS", "loc2", T0)
    entry = storage.pushes.claim(T0, T0 + timedelta(seconds=60), "lease-1")
    storage.pushes.retry(entry["id"], "lease-1", entry["revision"], T0 + timedelta(seconds=2), "PUT location: HTTP 503")
    storage.parties.record_push(
        "NL*EMS", {"location_id": "loc1", "at": T0, "ok": False, "error": "PUT location: HTTP 503"}
    )


def main(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "previous.db").unlink(missing_ok=True)
    sqlite = SqliteStorage(directory / "previous.db")
    write(sqlite)
    sqlite.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sqlite.close()
    for leftover in ("previous.db-wal", "previous.db-shm"):
        (directory / leftover).unlink(missing_ok=True)
    client = mongomock.MongoClient(tz_aware=True, tzinfo=UTC)
    mongo = MongoStorage(client, "maeve")
    write(mongo)
    dump = {name: list(client["maeve"][name].find()) for name in sorted(client["maeve"].list_collection_names())}
    (directory / "previous-mongo.json").write_text(json_util.dumps(dump, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
