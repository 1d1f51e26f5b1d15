"""Handlers for OCPI party registration."""

from __future__ import annotations

from typing import Any

from maeve_api.context import settings, storage
from maeve_api.ocpi import parties
from maeve_api.ocpi.client import check_operator_url
from maeve_api.ocpi.registration import register_with_partner


def register_party(body: dict[str, Any]) -> tuple[None, int]:
    if "url" in body:
        check_operator_url(body["url"], settings().ocpi_allow_private_networks)
        register_with_partner(storage(), settings(), body["token"], body["url"])
    else:
        storage().registrations.put(body["token"], body.get("status"))
    return None, 201


def list_parties(offset: int = 0, limit: int = 20) -> tuple[list[dict[str, Any]], int]:
    return parties.list_parties(storage(), offset, limit), 200
