"""Handlers for OCPI party registration."""

from __future__ import annotations

from typing import Any

from maeve_api.ocpi import parties
from maeve_api.ocpi.registration import register_token
from maeve_api.web.context import settings, storage


def register_party(body: dict[str, Any]) -> tuple[None, int]:
    register_token(storage(), settings(), body)
    return None, 201


def list_parties(offset: int = 0, limit: int = 20) -> tuple[list[dict[str, Any]], int]:
    return parties.list_parties(storage(), offset, limit), 200
