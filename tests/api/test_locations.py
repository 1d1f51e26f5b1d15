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
        {
            "uid": "cs001-2",
            "connectors": [
                {
                    "id": "1",
                    "standard": "IEC_62196_T2_COMBO",
                    "format": "CABLE",
                    "power_type": "DC",
                    "max_voltage": 920,
                    "max_amperage": 200,
                }
            ],
        },
    ],
}


def test_register_stores_the_whole_location(client, store: Storage):
    """The location is stored under the path id with owner, every EVSE UNKNOWN."""
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
    assert (second["uid"], second["connectors"][0]["power_type"]) == ("cs001-2", "DC")


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


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["evses", 1, "connectors"], [], "connectors"),
        (["coordinates", "latitude"], "-33.8688197", "latitude"),
        (["coordinates", "longitude"], "-151.2092955", "longitude"),
    ],
)
def test_what_a_strict_ocpi_peer_would_refuse_is_refused(client, store: Storage, path, value, field):
    """An EVSE without connectors, a latitude over 10 and a longitude over 11 characters are 400s naming the
    field, and nothing is stored: OCPI requires a connector and declares string(10) and string(11)."""
    body = copy.deepcopy(LOCATION)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    response = client.post("/location/loc1", json=body)
    assert_status(response, 400)
    assert field in response.json()["error"]
    assert store.locations.find("loc1") is None


@pytest.mark.parametrize(
    ("location_id", "path", "field"),
    [
        ("lieu-été", None, "locationId"),
        ("loc1", ["evses", 0, "uid"], "uid"),
        ("loc1", ["evses", 0, "evse_id"], "evse_id"),
        ("loc1", ["evses", 0, "connectors", 0, "id"], "id"),
    ],
)
def test_the_ids_partners_address_are_printable_ascii(client, store: Storage, location_id, path, field):
    """The location id, an EVSE's uid and evse_id and a connector's id are OCPI CiStrings, printable ASCII: partners
    fetch a location, EVSE or connector by them, and the OCPI listener refuses any other path. Anything else is a
    400 naming the field, and nothing is stored."""
    body = _with(path, "été") if path else LOCATION
    response = client.post(f"/location/{location_id}", json=body)
    assert_status(response, 400, f"{field}: must be printable ASCII characters")
    assert store.locations.find(location_id) is None


def test_a_location_stored_before_the_ascii_rule_still_reads_back(client, store: Storage):
    """Only a new location's id must be printable ASCII: one an earlier release stored reads back."""
    assert_empty(client.post("/location/loc1", json=LOCATION), 201)
    stored = store.locations.get("loc1")
    store.locations.put({**stored, "id": "lieu-été"})
    response = client.get("/location/lieu-été")
    assert response.status_code == 200, response.text
    assert response.json()["location"]["id"] == "lieu-été"


def test_coordinates_at_ocpis_lengths_are_accepted(client, store: Storage):
    """Ten characters of latitude and eleven of longitude are the most OCPI allows, and are stored."""
    body = {**LOCATION, "coordinates": {"latitude": "-33.868819", "longitude": "-151.209295"}}
    assert_empty(client.post("/location/loc1", json=body), 201)
    assert store.locations.get("loc1")["coordinates"] == body["coordinates"]


def test_a_location_reads_back_as_stored(client, store: Storage):
    """lookupLocation answers the stored location, its id, stamps and EVSE statuses; no party, no publication."""
    assert_empty(client.post("/location/loc1", json=LOCATION), 201)
    response = client.get("/location/loc1")
    assert response.status_code == 200
    body = response.json()
    assert body["publications"] == []
    location = body["location"]
    assert (location["id"], location["name"], location["coordinates"]) == ("loc1", "Gridlink", LOCATION["coordinates"])
    assert [evse["status"] for evse in location["evses"]] == ["UNKNOWN", "UNKNOWN"]
    assert datetime.fromisoformat(location["last_updated"])


def test_an_unknown_location_reads_back_as_404(client):
    """lookupLocation of a location never registered is a 404 Status."""
    assert_status(client.get("/location/nowhere"), 404)
