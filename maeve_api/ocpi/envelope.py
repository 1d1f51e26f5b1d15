"""The OCPI response envelope and the UTC timestamps of OCPI."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

SUCCESS = 1000


def ocpi_datetime(value: datetime) -> str:
    """An OCPI DateTime: RFC 3339 in UTC with a ``Z``, to the second."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(data: Any = None, status_code: int = SUCCESS, message: str = "Success") -> dict[str, Any]:
    """The OCPI envelope around ``data`` (left out when None), stamped now."""
    body: dict[str, Any] = {}
    if data is not None:
        body["data"] = data
    body["status_code"] = status_code
    body["status_message"] = message
    body["timestamp"] = ocpi_datetime(datetime.now(UTC))
    return body
