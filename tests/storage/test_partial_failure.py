"""A merge that fails midway: all-or-nothing on SQLite; on MongoDB what was written stays, and a retry converges.

The MongoDB merges (``merge_settings``, ``merge_install_certificates``) are one ordered ``bulk_write`` of
idempotent upserts, not a transaction (README, Storage): a failure midway leaves the upserts before it,
the request is answered 503, and sending the same request again stages every item exactly as one
successful write would have.
"""

from __future__ import annotations

import pytest
from pymongo.errors import AutoReconnect

from maeve_api.storage import StorageUnavailable

AUTH = {"security_profile": 0, "invalid_username_allowed": False}
SETTINGS = [{"name": f"Ctrlr/Setting{n}", "value": str(n), "status": "Pending"} for n in range(5)]
CERTIFICATES = [
    {"certificate_id": f"cert{n}", "type": "V2GRootCertificate", "pem": f"-----PEM {n}-----", "status": "Pending"}
    for n in range(5)
]
MERGES = {
    "settings": ("merge_settings", "settings", "_settings", SETTINGS, "name"),
    "install certificates": (
        "merge_install_certificates",
        "install_certificates",
        "_install_certificates",
        CERTIFICATES,
        "certificate_id",
    ),
}


def _fail_after(collection, applied: int):
    """Replace the collection's bulk_write by one that writes the first ``applied`` operations, then fails."""
    original = collection.bulk_write

    def bulk_write(requests, *args, **kwargs):
        original(requests[:applied], *args, **kwargs)
        raise AutoReconnect("connection lost midway")

    return bulk_write


@pytest.mark.parametrize("merge", MERGES)
def test_a_merge_failing_midway(storage, storage_engine, merge, monkeypatch):
    write, read, collection_name, items, key = MERGES[merge]
    repository = storage.charge_stations
    repository.put_auth("cs1", AUTH)
    if storage_engine == "sqlite":
        # The third row fails inside the transaction: nothing of the merge is kept.
        table = "charge_station_settings" if merge == "settings" else "charge_station_install_certificates"
        storage.connection().execute(
            f"CREATE TRIGGER fail_midway BEFORE INSERT ON {table} WHEN NEW.{key} = '{items[2][key]}' "
            "BEGIN SELECT RAISE(ABORT, 'failing midway'); END"
        )
        with pytest.raises(Exception, match="failing midway"):
            getattr(repository, write)("cs1", items)
        assert getattr(repository, read)("cs1") == []
        storage.connection().execute("DROP TRIGGER fail_midway")
    else:
        collection = getattr(repository, collection_name)
        monkeypatch.setattr(collection, "bulk_write", _fail_after(collection, 2))
        with pytest.raises(StorageUnavailable):
            getattr(repository, write)("cs1", items)
        assert [item[key] for item in getattr(repository, read)("cs1")] == [item[key] for item in items[:2]]
        monkeypatch.undo()
    getattr(repository, write)("cs1", items)
    stored = getattr(repository, read)("cs1")
    assert stored == items
