"""Write the stores of a previous release that ``test_upgrade.py`` opens: ``data/<commit>.db`` (SQLite) and
``data/<commit>-mongo.json`` (every MongoDB collection and its indexes, as extended JSON).

From the project root, with the project's virtual environment::

    .venv/bin/python tests/upgrade/make_data.py            # the previous release, commit 64d0397

It checks the commit out with ``git worktree add --detach`` into a temporary directory, lays its packages out as
they install (``maeve_api`` with ``spec``, ``handlers`` and ``storage`` inside), runs this script's ``write``
with that code first on ``PYTHONPATH`` and a fixed clock, and removes the worktree. The same commit gives the
same files, byte for byte.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

#: The release before schema 3: the last commit whose stores carry no version of their own (MongoDB) or
#: version 2 (SQLite).
PREVIOUS_RELEASE = "64d0397"
DATA = Path(__file__).parent / "data"

#: The clock of the old code while it writes: every record it stamps is stamped with this.
T0 = datetime(2026, 11, 24, 12, 0, 0, 123000, tzinfo=UTC)
REGISTERED_AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)

#: Station password ``correct-horse-battery``, as base64(SHA-256), and cs001's ``cs001-password``.
LEGACY_PASSWORD_HASH = base64.b64encode(hashlib.sha256(b"correct-horse-battery").digest()).decode()
CS001_PASSWORD_HASH = base64.b64encode(hashlib.sha256(b"cs001-password").digest()).decode()

#: The clear-text tokens of the previous release: after the upgrade none of them is in the store.
CLEAR_TOKENS = ("previous-token-a-pending", "previous-token-a-registered", "previous-inbound-token-c")

#: A V2G root to install on legacy-201 (CN legacy-root).
V2G_ROOT_PEM = """-----BEGIN CERTIFICATE-----
MIIBFzCBv6ADAgECAgEBMAoGCCqGSM49BAMCMBYxFDASBgNVBAMMC2xlZ2FjeS1y
b290MB4XDTI0MDEwMTAwMDAwMFoXDTQ0MDEwMTAwMDAwMFowFjEUMBIGA1UEAwwL
bGVnYWN5LXJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATVe3ewToBR57VH
Cufq0OOHQ9ZFJXuUSWKSUkdd0a7WkaSVwp+oknq9yCRDUg2auEPeA9q51Z4gySJu
/HqJPZbOMAoGCCqGSM49BAMCA0cAMEQCIF8JSNfF6Bf11/41brKnA5Negj90Gp6x
YjHGHANUunjEAiBs3AmAovJ9BQ6w9bwNl1+2NhA+DSufKtbrfCSp+TLe+w==
-----END CERTIFICATE-----
"""

#: cs001's client certificate, registered for TLS offload (CN cs001).
CLIENT_PEM = """-----BEGIN CERTIFICATE-----
MIIBDDCBs6ADAgECAgEHMAoGCCqGSM49BAMCMBAxDjAMBgNVBAMMBWNzMDAxMB4X
DTI0MDEwMTAwMDAwMFoXDTQ0MDEwMTAwMDAwMFowEDEOMAwGA1UEAwwFY3MwMDEw
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQflvl43EJZaBP9O6eyLTp++3iSgCGL
nwzFSCap0I7KsqzG7U/W2y5krgs/TdIdoY5xEe7GXAmfOAq3SkRKR8jwMAoGCCqG
SM49BAMCA0gAMEUCIC52pfgjOcmszrEgNyZPeKPuHuDogIxuYxaLVOXKPqV7AiEA
murVQxoMjr+HQNCFTSy/qyZhY7iK8Dij9DCxV+l6riQ=
-----END CERTIFICATE-----
"""

PARTY_ROLES = [
    {
        "role": "EMSP",
        "country_code": "NL",
        "party_id": "EMS",
        "business_details": {
            "name": "eMSP",
            "logo": {"url": "https://emsp.example.com/logo.png", "category": "OPERATOR", "type": "png"},
        },
    }
]
LOCATION_BODY: dict[str, Any] = {
    "id": "loc1",
    "country_code": "GB",
    "party_id": "TWK",
    "name": "Gridlink",
    "address": "1 Main Street",
    "city": "London",
    "country": "GBR",
    "coordinates": {"latitude": "51.53146", "longitude": "-0.12360"},
    "time_zone": "Europe/London",
    "evses": [
        {
            "uid": "cs001-1",
            "evse_id": "GB*TWK*E001*1",
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


def _token_body(uid: str, **overrides: Any) -> dict[str, Any]:
    return {
        "countryCode": "GB",
        "partyId": "TWK",
        "type": "RFID",
        "uid": uid,
        "contractId": "GB-TWK-012345678",
        "issuer": "Thoughtworks",
        "valid": True,
        "cacheMode": "ALWAYS",
        **overrides,
    }


def write(storage: Any) -> None:
    """Store one record of every kind the previous release kept, through its own repositories."""
    from maeve_api.certificates import client_certificate_hash, install_certificate_id, load_pem_certificate
    from maeve_api.ocpi.registration import token_hash
    from maeve_api.schemas import LOCATION, TOKEN

    stations = storage.charge_stations
    for cs_id in ("legacy-201", "legacy-16"):
        stations.put_auth(
            cs_id, {"security_profile": 0, "password_hash": LEGACY_PASSWORD_HASH, "invalid_username_allowed": False}
        )
    stations.put_auth(
        "cs001", {"security_profile": 1, "password_hash": CS001_PASSWORD_HASH, "invalid_username_allowed": True}
    )
    stations.merge_settings(
        "legacy-201",
        [
            {"name": "OCPPCommCtrlr/HeartbeatInterval", "value": "300", "status": "Pending"},
            {"name": "Done/Already", "value": "1", "status": "Accepted"},
        ],
    )
    stations.merge_settings("legacy-16", [{"name": "HeartbeatInterval", "value": "60", "status": "Pending"}])
    root = install_certificate_id(load_pem_certificate(V2G_ROOT_PEM, "certificate"))
    stations.merge_install_certificates(
        "legacy-201", [{"certificate_id": root, "type": "V2G", "pem": V2G_ROOT_PEM, "status": "Pending"}]
    )
    stations.put_trigger("legacy-201", {"message": "StatusNotification", "status": "Pending"})
    stations.put_trigger("legacy-16", {"message": "BootNotification", "status": "Pending"})
    storage.certificates.put(client_certificate_hash(load_pem_certificate(CLIENT_PEM, "certificate")), CLIENT_PEM)

    storage.tokens.put(TOKEN.load(_token_body("DEADBEEF", visualNumber="DF-01", groupId="fleet", languageCode="en")))
    # Release 2 kept uids differing only in case apart; the upgrade keeps one (the later, then the greater uid).
    storage.tokens.put(TOKEN.load(_token_body("R9CARD", countryCode="FR", partyId="AT9", valid=False)))
    storage.tokens.put(TOKEN.load(_token_body("r9card", countryCode="FR", partyId="AT9")))

    storage.registrations.put("previous-token-a-pending", None)
    storage.registrations.put("previous-token-a-registered", "REGISTERED")

    storage.locations.put(LOCATION.load(LOCATION_BODY))
    storage.locations.put(LOCATION.load({**LOCATION_BODY, "id": "loc2", "evses": []}))
    storage.parties.put(
        {
            "key": "NL*EMS",
            "roles": PARTY_ROLES,
            "version": "2.2.1",
            "versions_url": "https://emsp.example.com/ocpi/versions",
            "endpoints": [
                {"identifier": name, "role": "RECEIVER", "url": f"https://emsp.example.com/ocpi/2.2.1/{name}"}
                for name in ("credentials", "locations")
            ],
            "outbound_token": "previous-outbound-token",
            "token_encoding": "base64",
            "inbound_token": "previous-inbound-token-c",
            "inbound_token_hash": token_hash("previous-inbound-token-c"),
            "registered_at": REGISTERED_AT,
        }
    )
    storage.pushes.enqueue("NL*EMS", "loc1", T0)
    storage.pushes.enqueue("NL*EMS", "loc2", T0)
    entry = storage.pushes.claim(T0, T0 + timedelta(seconds=60), "lease-1")
    assert entry["location_id"] == "loc1", entry
    storage.pushes.retry(entry["id"], "lease-1", entry["revision"], T0 + timedelta(seconds=2), "PUT location: HTTP 503")
    storage.parties.record_push(
        "NL*EMS", {"location_id": "loc1", "at": T0, "ok": False, "error": "PUT location: HTTP 503"}
    )


def _fix_clock() -> None:
    """Make the old code's clock and revisions fixed, so that the same commit writes the same records."""
    import maeve_api.schemas
    import maeve_api.storage._documents

    maeve_api.schemas.utc_now = lambda: T0  # type: ignore[attr-defined]
    maeve_api.storage._documents.now = lambda: T0  # type: ignore[attr-defined]
    counter = itertools.count(1)
    uuid.uuid4 = lambda: uuid.UUID(int=next(counter))  # type: ignore[assignment]


def write_stores(directory: Path, commit: str) -> None:
    """Run under the previous release's code: write both stores into ``directory``."""
    import mongomock_ng as mongomock
    from bson import json_util

    import maeve_api
    from maeve_api.storage.mongo import MongoStorage
    from maeve_api.storage.sqlite import SqliteStorage

    layout = Path(os.environ["PYTHONPATH"]).resolve()
    if layout not in Path(maeve_api.__file__).resolve().parents:
        raise SystemExit(f"maeve_api comes from {maeve_api.__file__}, not from the checkout of {commit}")
    _fix_clock()
    database = directory / f"{commit}.db"
    for leftover in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        leftover.unlink(missing_ok=True)
    sqlite = SqliteStorage(database)
    write(sqlite)
    sqlite.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sqlite.close()
    for leftover in (Path(f"{database}-wal"), Path(f"{database}-shm")):
        leftover.unlink(missing_ok=True)

    client = mongomock.MongoClient(tz_aware=True, tzinfo=UTC)
    write(MongoStorage(client, "maeve"))
    db = client["maeve"]
    names = sorted(db.list_collection_names())
    dump = {
        "collections": {name: list(db[name].find().sort("_id")) for name in names},
        "indexes": {
            name: [
                {"name": index, "key": [list(pair) for pair in info["key"]], "unique": bool(info.get("unique"))}
                for index, info in sorted(db[name].index_information().items())
                if index != "_id_"
            ]
            for name in names
        },
    }
    (directory / f"{commit}-mongo.json").write_text(json_util.dumps(dump, indent=1, sort_keys=True) + "\n")


def _layout(worktree: Path, target: Path) -> None:
    """The checkout's packages as setup.cfg's package_dir installs them."""
    shutil.copytree(worktree / "maeve_api", target / "maeve_api")
    for name in ("spec", "handlers", "storage"):
        (target / "maeve_api" / name).symlink_to(worktree / name, target_is_directory=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commit", default=PREVIOUS_RELEASE)
    parser.add_argument("--write", type=Path, metavar="DIRECTORY", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.write is not None:
        write_stores(arguments.write, arguments.commit)
        return
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], check=True, capture_output=True, text=True)
    root = Path(top.stdout.strip())
    with tempfile.TemporaryDirectory(prefix="maeve-previous-") as temporary:
        worktree, layout = Path(temporary) / "checkout", Path(temporary) / "layout"
        git = ["git", "-C", str(root), "worktree"]
        subprocess.run([*git, "add", "--detach", str(worktree), arguments.commit], check=True)
        try:
            layout.mkdir()
            _layout(worktree, layout)
            DATA.mkdir(exist_ok=True)
            subprocess.run(
                [sys.executable, __file__, "--commit", arguments.commit, "--write", str(DATA.resolve())],
                check=True,
                cwd=temporary,
                env={**os.environ, "PYTHONPATH": str(layout)},
            )
        finally:
            subprocess.run([*git, "remove", "--force", str(worktree)], check=True)
    print(f"wrote {DATA / (arguments.commit + '.db')} and {DATA / (arguments.commit + '-mongo.json')}")


if __name__ == "__main__":
    main()
