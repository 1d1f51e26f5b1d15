"""Handlers for OCPI party registration."""

from __future__ import annotations

from typing import Any

from maeve_api.context import storage
from maeve_api.errors import NotSupported


def register_party(body: dict[str, Any]) -> tuple[None, int]:
    if "url" in body:
        raise NotSupported("registering with a party at its url is not available in this version")
    storage().registrations.put(body["token"], body.get("status"))
    return None, 201
