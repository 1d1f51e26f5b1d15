"""Handlers for OCPI party registration."""

from __future__ import annotations

from typing import Any

from maeve_api.context import settings, storage
from maeve_api.ocpi.registration import register_with_partner


def register_party(body: dict[str, Any]) -> tuple[None, int]:
    if "url" in body:
        register_with_partner(storage(), settings(), body["token"], body["url"])
    else:
        storage().registrations.put(body["token"], body.get("status"))
    return None, 201
