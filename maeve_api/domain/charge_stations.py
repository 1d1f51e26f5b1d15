"""Domain rules for what is staged on a charge station: settings and certificates to install."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from maeve_api.domain.certificates import install_certificate_id, load_pem_certificate
from maeve_api.domain.errors import InvalidInput

MAX_SETTING_NAME = 500


def staged_settings(settings: Mapping[str, str]) -> list[dict[str, str]]:
    """Each setting as stored: Pending until the station answers; raises InvalidInput for a bad name."""
    for name in settings:
        if not 1 <= len(name) <= MAX_SETTING_NAME:
            raise InvalidInput("setting name", f"must be 1 to {MAX_SETTING_NAME} characters long")
    return [{"name": name, "value": value, "status": "Pending"} for name, value in settings.items()]


def staged_certificates(items: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Each certificate as stored, keyed by the hex SHA-256 of its DER.

    Raises InvalidInput naming the first item that is not a PEM encoded X.509 certificate,
    before anything is stored.
    """
    staged = []
    for index, item in enumerate(items):
        certificate = load_pem_certificate(item["certificate"], f"certificates[{index}].certificate")
        staged.append(
            {
                "certificate_id": install_certificate_id(certificate),
                "type": item["type"],
                "pem": item["certificate"],
                "status": item.get("status", "Pending"),
            }
        )
    return staged
