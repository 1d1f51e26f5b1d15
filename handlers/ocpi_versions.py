"""Handlers for the OCPI versions and version details endpoints."""

from __future__ import annotations

from typing import Any

from maeve_api.ocpi.envelope import envelope
from maeve_api.ocpi.registration import version_details, versions
from maeve_api.web.context import settings


def get_versions() -> tuple[dict[str, Any], int]:
    return envelope(versions(settings())), 200


def get_version_details(version: str) -> tuple[dict[str, Any], int]:
    return envelope(version_details(settings(), version)), 200
