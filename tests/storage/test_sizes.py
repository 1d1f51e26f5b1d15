"""A record larger than the store keeps in one document is refused as TooLarge, and nothing is written."""

from __future__ import annotations

import pytest

from maeve_api.storage import TooLarge
from tests.storage.test_locations import make_location

#: More than MongoDB's 16 MiB BSON document limit.
HUGE = "x" * (17 * 1024 * 1024)


@pytest.fixture
def mongo_storage(storage, storage_engine, request):
    if storage_engine == "sqlite":
        pytest.skip("SQLite keeps rows of up to 1 GB; the 16 MB limit is MongoDB's")
    if storage_engine == "mongomock":
        request.applymarker(
            pytest.mark.xfail(strict=True, reason="mongomock does not enforce MongoDB's 16 MB document limit")
        )
    return storage


def test_a_document_over_16_mb_is_too_large_and_not_written(mongo_storage):
    """A location over 16 MB raises TooLarge (mapped to 413), not a driver error, and leaves nothing stored."""
    location = make_location("BIG")
    location["name"] = HUGE
    with pytest.raises(TooLarge):
        mongo_storage.locations.put(location)
    assert mongo_storage.locations.find("BIG") is None
