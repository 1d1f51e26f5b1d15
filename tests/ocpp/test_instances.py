"""Two instances of the service, separate gunicorn masters on ports of their own, sharing one store: what one
instance's API stages reaches a station connected to the other, and a station that moves from one to the other
is served by the new one while its old connection is closed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from ocpp.v201 import call as call201

from tests.ocpp.conftest import OcppService, connect, eventually, start_service

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def instances(
    service: OcppService, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OcppService, OcppService]]:
    """Instances A, the directory's service, and B, another master of two workers on the same store."""
    second = start_service(database_url, tmp_path_factory.mktemp("instance-b"))
    yield service, second
    second.stop()


async def test_a_station_on_one_instance_receives_within_a_second_what_the_other_staged(instances):
    a, b = instances
    cs_id = b.register()
    async with connect(a, cs_id, boot=True) as station:
        await eventually(lambda: b.get(f"/cs/{cs_id}").json()["connected"])
        for n in range(3):  # each through a new connection to B, so on either of its workers
            response = b.post(f"/cs/{cs_id}/reconfigure", {"Bench/Value": f"v{n}"})
            answered = time.monotonic()
            assert response.status_code == 200, response.text
            _action, payload = await station.next_call("SetVariables", timeout=5)
            assert time.monotonic() - answered < 1.0
            assert payload["set_variable_data"][0]["attribute_value"] == f"v{n}"

        def accepted() -> dict | None:
            setting = a.get(f"/cs/{cs_id}").json()["settings"]["Bench/Value"]
            return setting if setting["status"] == "Accepted" else None

        assert (await eventually(accepted))["value"] == "v2"


async def test_a_station_that_moves_to_the_other_instance_is_served_there_and_its_old_connection_closed(instances):
    a, b = instances
    cs_id = a.register()
    async with connect(a, cs_id, boot=True) as on_a:
        async with connect(b, cs_id, boot=True) as on_b:
            # Instance A sees the new connection through the store and closes its own.
            await asyncio.wait_for(on_a.ws.wait_closed(), 5)
            assert (await on_b.call(call201.Heartbeat(), suppress=False)).current_time
            # What either API stages now goes to the connection on B.
            assert a.post(f"/cs/{cs_id}/reconfigure", {"Bench/Moved": "yes"}).status_code == 200
            _action, payload = await on_b.next_call("SetVariables", timeout=5)
            assert payload["set_variable_data"][0]["attribute_value"] == "yes"
            shown = a.get(f"/cs/{cs_id}").json()
            assert shown["connected"] is True
    assert on_a.calls.empty()  # the old connection was sent nothing after the move
