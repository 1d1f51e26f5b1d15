"""Handlers for the OCPI tokens module in the RECEIVER role."""

from __future__ import annotations

from typing import Any

from maeve_api.ocpi import tokens
from maeve_api.ocpi.context import caller
from maeve_api.ocpi.envelope import envelope
from maeve_api.web.context import storage


def get_token(
    version: str, country_code: str, party_id: str, token_uid: str, type_: str | None = None
) -> tuple[dict[str, Any], int]:
    return envelope(tokens.get_token(storage(), caller(), country_code, party_id, token_uid, type_)), 200


def put_token(
    version: str, country_code: str, party_id: str, token_uid: str, body: dict[str, Any], type_: str | None = None
) -> tuple[dict[str, Any], int]:
    path = {"country_code": country_code, "party_id": party_id, "uid": token_uid}
    created = tokens.put_token(storage(), caller(), path, body, type_)
    return envelope(), 201 if created else 200


def patch_token(
    version: str, country_code: str, party_id: str, token_uid: str, body: dict[str, Any], type_: str | None = None
) -> tuple[dict[str, Any], int]:
    path = {"country_code": country_code, "party_id": party_id, "uid": token_uid}
    tokens.patch_token(storage(), caller(), path, body, type_)
    return envelope(), 200
