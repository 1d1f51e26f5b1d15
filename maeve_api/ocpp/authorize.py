"""Authorize answers from the token store, for OCPP 2.0.1 and 1.6."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from maeve_api.domain.emaid import normalize_emaid
from maeve_api.domain.errors import InvalidInput
from maeve_api.storage import Storage
from maeve_api.storage.base import Document


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def find_token(storage: Storage, id_token: str, token_type: str | None) -> Document | None:
    """The stored token for an id token: an eMAID by its normalised contract id (else its uid), others by uid."""
    if token_type == "eMAID":
        try:
            found = storage.tokens.find_by_contract_id(normalize_emaid(id_token))
        except InvalidInput:
            found = None
        if found is not None:
            return found
    return storage.tokens.find(id_token)


def id_token_info(storage: Storage, id_token: dict[str, Any]) -> dict[str, Any]:
    """The 2.0.1 ``idTokenInfo`` (snake_case) for an ``idToken``: NoAuthorization is Accepted, others looked up."""
    token_type = id_token.get("type")
    if token_type == "NoAuthorization":
        return {"status": "Accepted"}
    token = find_token(storage, str(id_token.get("id_token", "")), token_type)
    if token is None:
        return {"status": "Unknown"}
    info: dict[str, Any] = {"status": "Accepted" if token["valid"] else "Invalid"}
    if token.get("cache_mode") == "NEVER":
        info["cache_expiry_date_time"] = _now()
    if token.get("group_id"):
        info["group_id_token"] = {"id_token": token["group_id"], "type": "Central"}
    return info


def id_tag_info(storage: Storage, id_tag: str) -> dict[str, Any]:
    """The 1.6 ``idTagInfo`` (snake_case): valid Accepted, not valid or unknown Invalid (1.6 has no Unknown)."""
    token = storage.tokens.find(id_tag)
    if token is None:
        return {"status": "Invalid"}
    info: dict[str, Any] = {"status": "Accepted" if token["valid"] else "Invalid"}
    if token.get("cache_mode") == "NEVER":
        info["expiry_date"] = _now()
    if token.get("group_id"):
        info["parent_id_tag"] = token["group_id"][:20]
    return info
