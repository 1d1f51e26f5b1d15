"""The reads of staged items that stations ask for at once are one read of the store."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest

from maeve_api.ocpp.delivery import DeliveryReader
from maeve_api.storage import StorageUnavailable

pytestmark = pytest.mark.anyio


class Repository:
    """Records each deliveries_of call; the first one blocks until released."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.release = threading.Event()
        self.fail = False

    def deliveries_of(self, cs_ids):
        self.calls.append(list(cs_ids))
        if len(self.calls) == 1:
            self.release.wait(5)
        if self.fail:
            raise StorageUnavailable("down")
        return {cs_id: {"settings": [{"name": cs_id}], "certificates": [], "trigger": None} for cs_id in cs_ids}


async def test_stations_asking_while_a_read_is_in_flight_are_read_together_by_the_next():
    repository = Repository()
    reader = DeliveryReader(SimpleNamespace(ocpp=repository))
    first = asyncio.ensure_future(reader.read("a"))
    while not repository.calls:
        await asyncio.sleep(0.01)
    # Asked after the first read began: they must not get its answer, and they share the next read.
    later = [asyncio.ensure_future(reader.read(cs_id)) for cs_id in ("b", "c", "b")]
    await asyncio.sleep(0.05)
    repository.release.set()
    found = await asyncio.gather(first, *later)
    assert repository.calls == [["a"], ["b", "c"]]
    assert [f["settings"][0]["name"] for f in found] == ["a", "b", "c", "b"]
    assert found[1] == found[3] and found[1] is not found[3]  # each caller gets its own copy to change


async def test_a_failed_read_fails_every_station_of_it_and_the_next_read_works():
    repository = Repository()
    repository.release.set()
    repository.fail = True
    reader = DeliveryReader(SimpleNamespace(ocpp=repository))
    results = await asyncio.gather(reader.read("a"), reader.read("b"), return_exceptions=True)
    assert all(isinstance(r, StorageUnavailable) for r in results)
    repository.fail = False
    started = time.monotonic()
    assert (await reader.read("a"))["settings"] == [{"name": "a"}]
    assert time.monotonic() - started < 1
