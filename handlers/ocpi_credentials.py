"""Handlers for the OCPI credentials module."""

from __future__ import annotations

from typing import Any

from maeve_api.ocpi import registration
from maeve_api.ocpi.context import caller, correlation_id
from maeve_api.ocpi.envelope import envelope
from maeve_api.web.context import settings, storage


def get_credentials(version: str) -> tuple[dict[str, Any], int]:
    return envelope(registration.our_credentials(settings(), caller()["token"])), 200


def post_credentials(version: str, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    return envelope(registration.accept_registration(storage(), settings(), caller(), body, correlation_id())), 200


def put_credentials(version: str, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    return envelope(registration.update_registration(storage(), settings(), caller(), body, correlation_id())), 200


def delete_credentials(version: str) -> tuple[dict[str, Any], int]:
    registration.remove_registration(storage(), caller())
    return envelope(), 200
