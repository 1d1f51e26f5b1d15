"""The operator's read-back of OCPI parties and registrations: identities and state, never a token or its hash."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from maeve_api.ocpi.client import shorten
from maeve_api.ocpi.locations import _wire
from maeve_api.storage import Storage

_PUSH_KEYS = ("location_id", "at", "ok", "error", "http_status", "status_code", "status_message")


def _role(role: Mapping[str, Any]) -> dict[str, Any]:
    shown = {name: role[name] for name in ("role", "country_code", "party_id") if isinstance(role.get(name), str)}
    details = role.get("business_details")
    if isinstance(details, Mapping) and isinstance(details.get("name"), str):
        shown["business_name"] = shorten(details["name"], 100)
    return shown


def _party(party: Mapping[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "kind": "party",
        "key": party["key"],
        "status": "REGISTERED",
        "version": party.get("version"),
        "roles": [_role(role) for role in party.get("roles", []) if isinstance(role, Mapping)],
        "registered_at": party.get("registered_at"),
    }
    last_push = party.get("last_push")
    if isinstance(last_push, Mapping):
        shown["last_push"] = {key: last_push[key] for key in _PUSH_KEYS if last_push.get(key) is not None}
    return {key: value for key, value in shown.items() if value is not None}


def _registration(registration: Mapping[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {"kind": "registration", "status": registration.get("status") or "PENDING"}
    for name in ("country_code", "party_id"):
        if isinstance(registration.get(name), str):
            shown[name] = registration[name]
    return shown


def list_parties(storage: Storage, offset: int, limit: int) -> list[dict[str, Any]]:
    """Registered parties ordered by key, then the registrations not yet used by a handshake; one page of them."""
    shown = [_party(party) for party in storage.parties.page(offset, limit)]
    if len(shown) < limit:
        # Past the last party: a short page tells how many there are; only past the end are they counted.
        parties = offset + len(shown) if shown or not offset else storage.parties.count()
        skipped = max(0, offset - parties)
        shown += [_registration(r) for r in storage.registrations.page(skipped, limit - len(shown))]
    listed: list[dict[str, Any]] = _wire(shown)
    return listed
