"""Handlers for the OCPI locations module in the SENDER role: partners pull our locations."""

from __future__ import annotations

from typing import Any

from connexion import request

from maeve_api.ocpi import locations
from maeve_api.ocpi.envelope import envelope
from maeve_api.web.context import settings, storage


def list_locations(
    version: str, offset: int = 0, limit: int = 100, date_from: str | None = None, date_to: str | None = None
) -> tuple[dict[str, Any], int, dict[str, str]]:
    since, until = locations.parse_datetime(date_from), locations.parse_datetime(date_to)
    page, total = locations.location_page(storage(), settings(), offset, limit, since, until)
    query = dict(request.query_params)
    return envelope(page), 200, locations.page_headers(settings(), request.url.path, query, offset, len(page), total)


def get_location(version: str, location_id: str) -> tuple[dict[str, Any], int]:
    return envelope(locations.find_location(storage(), settings(), location_id)), 200


def get_evse(version: str, location_id: str, evse_uid: str) -> tuple[dict[str, Any], int]:
    return envelope(locations.find_evse(storage(), settings(), location_id, evse_uid)), 200


def get_connector(version: str, location_id: str, evse_uid: str, connector_id: str) -> tuple[dict[str, Any], int]:
    return envelope(locations.find_connector(storage(), settings(), location_id, evse_uid, connector_id)), 200
