"""Document normalisation shared by the engines, so that both store and return the same shapes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from operator import index
from typing import Any

from .base import Document

UTC = UTC

#: ``provisioning`` value stored with every (re-)registered charge station.
PROVISIONING_PENDING = "Pending"
#: Status a registration gets when it is stored without one.
REGISTRATION_PENDING = "PENDING"

TOKEN_REQUIRED = (
    "country_code",
    "party_id",
    "type",
    "contract_id",
    "issuer",
    "valid",
    "cache_mode",
    "last_updated",
)
TOKEN_OPTIONAL = ("visual_number", "group_id", "language_code")


def now() -> datetime:
    """The current time as a UTC datetime truncated to milliseconds, as both engines store it."""
    current = datetime.now(UTC)
    return current.replace(microsecond=current.microsecond // 1000 * 1000)


def auth_document(auth: Mapping[str, Any]) -> Document:
    """The auth keys of ``auth``: a missing or None password is absent; raises KeyError without a profile."""
    document: Document = {"security_profile": index(auth["security_profile"])}
    if auth.get("password_hash") is not None:
        document["password_hash"] = auth["password_hash"]
    document["invalid_username_allowed"] = bool(auth.get("invalid_username_allowed", False))
    return document


def setting_rows(settings: Iterable[Mapping[str, str]]) -> list[Document]:
    """One ``{name, value, status}`` per distinct name; a later duplicate replaces an earlier one."""
    rows: dict[str, Document] = {}
    for setting in settings:
        rows[setting["name"]] = {"name": setting["name"], "value": setting["value"], "status": setting["status"]}
    return list(rows.values())


def install_certificate_rows(certificates: Iterable[Mapping[str, str]]) -> list[Document]:
    """One certificate per distinct certificate_id; a later duplicate replaces an earlier one."""
    rows: dict[str, Document] = {}
    for certificate in certificates:
        rows[certificate["certificate_id"]] = {
            "certificate_id": certificate["certificate_id"],
            "type": certificate["type"],
            "pem": certificate["pem"],
            "status": certificate["status"],
        }
    return list(rows.values())


def trigger_document(trigger: Mapping[str, str]) -> Document:
    """The ``{message, status}`` of a trigger."""
    return {"message": trigger["message"], "status": trigger["status"]}


def token_document(token: Mapping[str, Any]) -> Document:
    """The token's documented keys; optional keys that are None are left out.

    Raises KeyError if a required key is missing and TypeError if last_updated is not a datetime.
    """
    document: Document = {"uid": token["uid"]}
    for key in TOKEN_REQUIRED:
        document[key] = token[key]
    document["valid"] = bool(document["valid"])
    if not isinstance(document["last_updated"], datetime):
        raise TypeError("token last_updated must be a datetime")
    for key in TOKEN_OPTIONAL:
        if token.get(key) is not None:
            document[key] = token[key]
    return document


def location_last_updated(location: Mapping[str, Any]) -> datetime | None:
    """The location's sort timestamp; raises TypeError unless it is a datetime, None or absent.

    Both engines sort a missing timestamp first; other types would sort differently in each.
    """
    last_updated = location.get("last_updated")
    if last_updated is not None and not isinstance(last_updated, datetime):
        raise TypeError("location last_updated must be a datetime")
    return last_updated


def check_page(offset: int, limit: int) -> None:
    """Raise ValueError for a negative offset or limit (engines disagree on what those mean)."""
    if offset < 0 or limit < 0:
        raise ValueError("offset and limit must not be negative")
