"""Our locations as OCPI 2.2.1 Location objects, and their publication to partners through the outbox."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from maeve_api.domain.errors import InvalidInput
from maeve_api.ocpi.envelope import ocpi_datetime
from maeve_api.ocpi.errors import InvalidParameters, UnknownLocation
from maeve_api.ocpi.registration import endpoint
from maeve_api.settings import Settings
from maeve_api.storage import Storage, push_id

#: The most locations one page of the locations module holds (X-Limit).
PAGE_LIMIT = 100


def _wire(value: Any) -> Any:
    if isinstance(value, datetime):
        return ocpi_datetime(value)
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wire(item) for item in value]
    return value


def ocpi_location(stored: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """The OCPI Location of a stored one: published, owned by our party, in its time zone or the configured one."""
    location: dict[str, Any] = _wire(dict(stored))
    location["country_code"] = settings.ocpi_country_code
    location["party_id"] = settings.ocpi_party_id
    location["publish"] = True
    location.setdefault("time_zone", settings.ocpi_time_zone)
    location.setdefault("evses", [])
    return location


def publish_location(storage: Storage, location: Mapping[str, Any]) -> None:
    """Store the location and queue a push of it to every partner with a locations receiver.

    Raises InvalidInput for a time_zone that is not an IANA time zone.
    """
    if "time_zone" in location:
        try:
            ZoneInfo(location["time_zone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput("time_zone", "must be an IANA time zone such as Europe/London") from None
    storage.locations.put(location)
    for party in storage.parties.all():
        if endpoint(party, "locations", "RECEIVER"):
            storage.pushes.enqueue(party["key"], location["id"])


def location_page(
    storage: Storage,
    settings: Settings,
    offset: int,
    limit: int,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of OCPI Locations updated in [date_from, date_to), oldest first, and how many match in all.

    Both are indexed queries in the store.
    """
    page = storage.locations.updated_between(offset, min(limit, PAGE_LIMIT), date_from, date_to)
    total = storage.locations.count(date_from, date_to)
    return [ocpi_location(location, settings) for location in page], total


def _publication(key: str, entry: Mapping[str, Any] | None, result: Mapping[str, Any] | None) -> dict[str, Any]:
    """One party's publication state: pending while in the outbox, else what the last push came to."""
    answer = {
        name: result[name]
        for name in ("error", "http_status", "status_code", "status_message")
        if result is not None and result.get(name) is not None
    }
    if entry is not None:
        state: dict[str, Any] = {
            "party": key,
            "state": "pending",
            "attempts": entry["attempts"],
            "next_attempt_at": entry["due_at"],
        }
        if result is not None and result.get("state") == "retrying" and result.get("revision") == entry["revision"]:
            state.update(answer)
        return state
    assert result is not None
    if result["state"] == "delivered":
        return {"party": key, "state": "delivered", "delivered_at": result["at"], "attempts": result.get("attempts", 1)}
    return {"party": key, "state": "failed", "failed_at": result["at"], "attempts": result.get("attempts", 1), **answer}


def location_state(storage: Storage, location_id: str) -> dict[str, Any]:
    """The stored location and the state of its push to each party it was queued for; raises NotFound."""
    location = storage.locations.get(location_id)
    results = {result["party"]: result for result in storage.pushes.results(location_id)}
    publications = []
    for party in storage.parties.all():
        key = party["key"]
        entry = storage.pushes.find(push_id(key, location_id))
        if entry is not None or key in results:
            publications.append(_publication(key, entry, results.get(key)))
    return _wire({"location": location, "publications": publications})


def parse_datetime(value: str | None) -> datetime | None:
    """An OCPI DateTime parameter; one without an offset is UTC, as OCPI says. Raises InvalidParameters."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidParameters("date_from, date_to: must be a real date and time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def page_headers(
    settings: Settings, path: str, query: Mapping[str, str], offset: int, shown: int, total: int
) -> dict[str, str]:
    """``X-Total-Count``, ``X-Limit`` and, unless this is the last page, a ``Link`` to the next one with the same
    filters, under our external URL."""
    headers = {"X-Total-Count": str(total), "X-Limit": str(PAGE_LIMIT)}
    if offset + shown < total:
        kept = {name: value for name, value in query.items() if name != "offset"}
        following = urlencode({**kept, "offset": offset + shown})
        headers["Link"] = f'<{settings.ocpi_external_url.rstrip("/")}{path}?{following}>; rel="next"'
    return headers


def find_location(storage: Storage, settings: Settings, location_id: str) -> dict[str, Any]:
    """The OCPI Location; raises UnknownLocation."""
    stored = storage.locations.find(location_id)
    if stored is None:
        raise UnknownLocation("location_id: no such location")
    return ocpi_location(stored, settings)


def find_evse(storage: Storage, settings: Settings, location_id: str, evse_uid: str) -> dict[str, Any]:
    """An EVSE of the location; raises UnknownLocation."""
    for evse in find_location(storage, settings, location_id)["evses"]:
        if evse["uid"] == evse_uid:
            return dict(evse)
    raise UnknownLocation("evse_uid: the location has no such EVSE")


def find_connector(
    storage: Storage, settings: Settings, location_id: str, evse_uid: str, connector_id: str
) -> dict[str, Any]:
    """A connector of an EVSE; raises UnknownLocation."""
    for connector in find_evse(storage, settings, location_id, evse_uid)["connectors"]:
        if connector["id"] == connector_id:
            return dict(connector)
    raise UnknownLocation("connector_id: the EVSE has no such connector")
