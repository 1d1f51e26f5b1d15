"""Handlers for charging locations."""

from __future__ import annotations

from typing import Any

from maeve_api.context import storage
from maeve_api.ocpi.locations import publish_location
from maeve_api.schemas import LOCATION


def register_location(location_id: str, body: dict[str, Any]) -> tuple[None, int]:
    publish_location(storage(), LOCATION.load({**body, "id": location_id}))
    return None, 201
