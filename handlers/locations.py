"""Handlers for charging locations."""

from __future__ import annotations

from typing import Any

from maeve_api.domain.schemas import LOCATION
from maeve_api.ocpi.locations import location_state, publish_location
from maeve_api.web.context import storage


def register_location(location_id: str, body: dict[str, Any]) -> tuple[None, int]:
    publish_location(storage(), LOCATION.load({**body, "id": location_id}))
    return None, 201


def lookup_location(location_id: str) -> tuple[dict[str, Any], int]:
    return location_state(storage(), location_id), 200
