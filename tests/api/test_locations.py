"""Locations through the real app."""

from __future__ import annotations

import copy
from datetime import datetime

import pytest

from maeve_api.storage import Storage
from tests.api.conftest import assert_empty, assert_status

LOCATION = {
    "country_code": "GB",
    "party_id": "TWK",
    "name": "Gridlink",
    "address": "1 Main Street",
    "city": "London",
    "postal_code": "N1 9GU",
    "country": "GBR",
    "coordinates": {"latitude": "51.53146", "longitude": "-0.12360"},
    "parking_type": "ON_STREET",
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


def test_register_stores_the_whole_location(client, store: Storage):
    """The location is stored under the path id with owner, EVSEs (even without connectors) as UNKNOWN."""
    assert_empty(client.post("/location/loc1", json=LOCATION), 201)
    stored = store.locations.find("loc1")
    assert stored is not None
    stamp = stored.pop("last_updated")
    assert isinstance(stamp, datetime)
    first, second = stored.pop("evses")
    assert stored == {"id": "loc1", **{k: v for k, v in LOCATION.items() if k != "evses"}}
    assert first["status"] == second["status"] == "UNKNOWN"
    assert first["last_updated"] == second["last_updated"] == first["connectors"][0]["last_updated"] == stamp
    assert first["evse_id"] == "GB*TWK*E001*1"
    assert first["connectors"][0]["max_voltage"] == 400
    assert (second["uid"], second["connectors"]) == ("cs001-2", [])


@pytest.mark.parametrize("field", ["name", "postal_code", "parking_type", "evses"])
@pytest.mark.parametrize("how", ["absent", "null"])
def test_optional_fields_may_be_absent_or_null(client, store: Storage, field, how):
    """name, postal_code, parking_type and evses may be left out or null."""
    body = copy.deepcopy(LOCATION)
    if how == "absent":
        del body[field]
    else:
        body[field] = None
    assert_empty(client.post("/location/loc2", json=body), 201)
    stored = store.locations.find("loc2")
    assert stored is not None
    assert stored.get(field) == ([] if field == "evses" else None)


def _with(path: list, value):
    body = copy.deepcopy(LOCATION)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["country"], "GB"),
        (["country_code"], "GBR"),
        (["party_id"], "TWKX"),
        (["address"], "a" * 46),
        (["city"], "c" * 46),
        (["postal_code"], "p" * 11),
        (["coordinates", "latitude"], "91.00000"),
        (["coordinates", "latitude"], "51.5"),
        (["coordinates", "longitude"], 0.1),
        (["parking_type"], "ROOF"),
        (["evses", 0, "connectors", 0, "max_voltage"], 2**31),
        (["evses", 0, "connectors", 0, "max_amperage"], -1),
        (["evses", 0, "connectors", 0, "standard"], "PLUG"),
        (["evses", 0, "status"], "AVAILABLE"),
        (["evses", 0, "uid"], "u" * 37),
    ],
)
def test_location_limits_are_enforced(client, store: Storage, path, value):
    """OCPI 2.2.1 field limits and the seed's enums are 400; nothing is stored."""
    assert_status(client.post("/location/loc3", json=_with(path, value)), 400)
    assert store.locations.find("loc3") is None


def test_location_id_is_at_most_36_characters(client):
    """The location id follows OCPI's 36-character limit."""
    assert_empty(client.post(f"/location/{'l' * 36}", json=LOCATION), 201)
    assert_status(client.post(f"/location/{'l' * 37}", json=LOCATION), 400, "locationId")
