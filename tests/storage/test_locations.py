"""Charging locations on every engine: whole nested documents, replacement by id and paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from maeve_api.storage import NotFound
from tests.storage.conftest import assert_not_found, assert_utc, datetimes_in

T0 = datetime(2024, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
CET = timezone(timedelta(hours=1))


def make_location(location_id="LOC1", last_updated=T0, **overrides):
    location = {
        "id": location_id,
        "country_code": "NL",
        "party_id": "EXA",
        "publish": True,
        "name": "Gare de l'Est \u2013 Hall ☀ \U0001f50c",
        "address": "Straße der Einheit 1",
        "city": "Zürich",
        "postal_code": None,
        "country": "CHE",
        "coordinates": {"latitude": "47.376887", "longitude": "8.541694"},
        "related_locations": [],
        "directions": [{"language": "de", "text": "Einfahrt über die Rückseite"}, {"language": "ja", "text": "裏口"}],
        "evses": [
            {
                "uid": "EVSE-1",
                "status": "AVAILABLE",
                "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"],
                "connectors": [
                    {
                        "id": "1",
                        "standard": "IEC_62196_T2",
                        "format": "SOCKET",
                        "power_type": "AC_3_PHASE",
                        "max_voltage": 230,
                        "max_amperage": 32,
                        "max_electric_power": 22080.5,
                        "tariff_ids": ["T1", "T2"],
                        "last_updated": datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC),
                    }
                ],
                "status_schedule": [{"period_begin": "2024-03-02T08:00:00+01:00", "status": "BLOCKED"}],
                "last_updated": datetime(2024, 3, 1, 13, 0, 0, 1000, tzinfo=CET),
            }
        ],
        "opening_times": {"twentyfourseven": True, "regular_hours": []},
        "charging_when_closed": False,
        "time_zone": "Europe/Zurich",
        "last_updated": last_updated,
    }
    location.update(overrides)
    return location


def test_put_then_find_returns_the_whole_nested_document(storage):
    """A location with unicode, nested lists and dicts, numbers, bools and None comes back equal."""
    storage.locations.put(make_location())
    assert storage.locations.find("LOC1") == make_location()


def test_the_location_evse_and_connector_timestamps_come_back_utc(storage):
    """The last_updated of the location, its EVSEs and their connectors, in whatever zone given, come back UTC."""
    storage.locations.put(make_location())
    found = storage.locations.find("LOC1")
    given = datetimes_in(make_location())
    returned = datetimes_in(found)
    assert len(returned) == len(given) == 3
    for value in returned:
        assert_utc(value)
    assert returned == given
    assert found["evses"][0]["last_updated"] == datetime(2024, 3, 1, 12, 0, 0, 1000, tzinfo=UTC)


def test_a_datetime_outside_the_timestamps_is_refused(storage):
    """A datetime anywhere but at a last_updated raises TypeError on every engine, and nothing is stored."""
    with pytest.raises(TypeError):
        storage.locations.put(make_location(opening_times={"exceptional": [T0]}))
    assert storage.locations.find("LOC1") is None


@pytest.mark.parametrize("marker", [{"$date": "x"}, {"$oid": "0123456789ab0123456789ab"}, {"$numberLong": "1"}])
def test_extended_json_keys_in_a_location_stay_data(storage, marker):
    """A key that extended JSON would decode is stored and returned as plain data."""
    storage.locations.put(make_location(opening_times={"note": marker}))
    assert storage.locations.get("LOC1")["opening_times"] == {"note": marker}


def test_datetimes_are_truncated_to_milliseconds(storage):
    """Microseconds below a millisecond are dropped, at the top level and nested."""
    precise = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    location = make_location(last_updated=precise)
    location["evses"][0]["connectors"][0]["last_updated"] = precise
    storage.locations.put(location)
    found = storage.locations.get("LOC1")
    expected = datetime(2024, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert (found["last_updated"], found["evses"][0]["connectors"][0]["last_updated"]) == (expected, expected)


def test_put_replaces_the_location_by_id(storage):
    """A second put with the same id replaces the whole document: keys not given again are gone."""
    storage.locations.put(make_location())
    replacement = {"id": "LOC1", "name": "Renamed", "last_updated": T0 + timedelta(days=1)}
    storage.locations.put(replacement)
    assert storage.locations.find("LOC1") == replacement
    assert storage.locations.page(0, 10) == [replacement]


def test_find_of_an_unknown_id_is_none(storage):
    """find returns None for an id that was never stored."""
    storage.locations.put(make_location())
    assert storage.locations.find("loc1") is None


def test_get_of_an_unknown_id_raises_not_found(storage):
    """get raises NotFound("location", id) for an id that was never stored."""
    with pytest.raises(NotFound) as raised:
        storage.locations.get("LOC404")
    assert_not_found(raised.value, "location", "LOC404")


def test_page_orders_by_last_updated_then_id(storage):
    """page() sorts by last_updated as an instant, ties broken by id in code-point order, missing timestamps first."""
    later = T0 + timedelta(minutes=5)
    stored = [
        {"id": "b", "last_updated": later},
        {"id": "a", "last_updated": later.astimezone(CET)},
        {"id": "C", "last_updated": later},
        {"id": "z", "last_updated": T0 - timedelta(milliseconds=1)},
        {"id": "y", "last_updated": T0 + timedelta(days=365)},
        {"id": "m"},
        {"id": "Ä", "last_updated": later},
    ]
    for location in stored:
        storage.locations.put(location)
    assert [location["id"] for location in storage.locations.page(0, 10)] == ["m", "z", "C", "a", "b", "Ä", "y"]


def test_page_returns_whole_documents(storage):
    """page() returns the same documents as find."""
    storage.locations.put(make_location("L2", T0 + timedelta(seconds=1)))
    storage.locations.put(make_location("L1"))
    assert storage.locations.page(0, 10) == [make_location("L1"), make_location("L2", T0 + timedelta(seconds=1))]


def test_page_follows_a_replaced_timestamp(storage):
    """Replacing a location moves it to its new last_updated position."""
    for index, location_id in enumerate(("L1", "L2", "L3")):
        storage.locations.put({"id": location_id, "last_updated": T0 + timedelta(seconds=index)})
    storage.locations.put({"id": "L1", "last_updated": T0 + timedelta(seconds=10)})
    assert [location["id"] for location in storage.locations.page(0, 10)] == ["L2", "L3", "L1"]


@pytest.mark.parametrize(
    ("offset", "limit", "expected"),
    [(0, 2, ["L0", "L1"]), (1, 2, ["L1", "L2"]), (2, 5, ["L2", "L3"]), (4, 1, []), (10, 10, []), (0, 0, [])],
)
def test_page_applies_offset_then_limit(storage, offset, limit, expected):
    """page(offset, limit) skips offset locations and returns at most limit; past the end or limit 0 gives []."""
    for index in (2, 0, 3, 1):
        storage.locations.put({"id": f"L{index}", "last_updated": T0 + timedelta(seconds=index)})
    assert [location["id"] for location in storage.locations.page(offset, limit)] == expected


@pytest.mark.parametrize(("offset", "limit"), [(-1, 10), (0, -1)])
def test_page_rejects_negative_offset_or_limit(storage, offset, limit):
    """A negative offset or limit raises ValueError."""
    with pytest.raises(ValueError, match="must not be negative"):
        storage.locations.page(offset, limit)


@pytest.mark.engine_gap(
    mongoeco="$lt on a date also matches null and embedded documents (no BSON type bracketing), so a location "
    "without last_updated falls inside every window that has an upper bound"
)
def test_a_date_window_pages_and_counts_in_the_store(storage):
    """updated_between and count agree with filtering every location by [date_from, date_to), oldest first, and
    leave out a location without last_updated when either bound is given."""
    for index in range(12):
        storage.locations.put(make_location(f"L{index:02}", T0 + timedelta(minutes=index % 6)))
    storage.locations.put(make_location("UNDATED", None))
    every = storage.locations.page(0, 100)
    windows = [
        (None, None),
        (T0 + timedelta(minutes=2), None),
        (None, T0 + timedelta(minutes=3)),
        (T0 + timedelta(minutes=1), T0 + timedelta(minutes=4)),
        (T0 + timedelta(hours=1), None),
    ]
    for date_from, date_to in windows:
        expected = [
            location["id"]
            for location in every
            if (date_from is None and date_to is None)
            or (
                location.get("last_updated") is not None
                and (date_from is None or location["last_updated"] >= date_from)
                and (date_to is None or location["last_updated"] < date_to)
            )
        ]
        assert storage.locations.count(date_from, date_to) == len(expected)
        got = [location["id"] for location in storage.locations.updated_between(1, 3, date_from, date_to)]
        assert got == expected[1:4], (date_from, date_to)
    assert storage.locations.updated_between(0, 0) == []
