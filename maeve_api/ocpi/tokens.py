"""The OCPI tokens module in the RECEIVER role: partners' tokens kept in the same store as ``setToken``'s."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from maeve_api.ocpi.envelope import ocpi_datetime
from maeve_api.ocpi.errors import InvalidParameters, UnknownToken
from maeve_api.schemas import TOKEN
from maeve_api.storage import Storage

# OCPI Token field -> the internal API's Token field.
_WIRE = {
    "country_code": "countryCode",
    "party_id": "partyId",
    "uid": "uid",
    "type": "type",
    "contract_id": "contractId",
    "visual_number": "visualNumber",
    "issuer": "issuer",
    "group_id": "groupId",
    "valid": "valid",
    "whitelist": "cacheMode",
    "language": "languageCode",
}
_KEYS = ("country_code", "party_id", "uid")


def _owned(caller: Mapping[str, Any], storage: Storage, country_code: str, party_id: str) -> None:
    """Raise InvalidParameters unless the calling party has the role the token belongs to."""
    key = caller.get("party")
    if key is None:  # a token A registered REGISTERED through the internal API: trusted as an operator
        return
    party = storage.parties.find(key)
    roles = {(r["country_code"].upper(), r["party_id"].upper()) for r in (party or {}).get("roles", [])}
    if (country_code.upper(), party_id.upper()) not in roles:
        raise InvalidParameters("country_code, party_id: must be one of your roles")


def _ocpi_token(stored: Mapping[str, Any]) -> dict[str, Any]:
    wire = TOKEN.dump(stored)
    token = {ocpi: wire[internal] for ocpi, internal in _WIRE.items() if internal in wire}
    token["last_updated"] = ocpi_datetime(stored["last_updated"])
    return token


def _stored(storage: Storage, country_code: str, party_id: str, uid: str) -> dict[str, Any]:
    stored = storage.tokens.find(uid)
    if stored is None or (stored["country_code"].upper(), stored["party_id"].upper()) != (
        country_code.upper(),
        party_id.upper(),
    ):
        raise UnknownToken(f"unknown token {country_code}/{party_id}/{uid}")
    return stored


def get_token(
    storage: Storage, caller: Mapping[str, Any], country_code: str, party_id: str, uid: str
) -> dict[str, Any]:
    """The OCPI Token; raises InvalidParameters if it is not the caller's to read, UnknownToken if there is none."""
    _owned(caller, storage, country_code, party_id)
    return _ocpi_token(_stored(storage, country_code, party_id, uid))


def put_token(storage: Storage, caller: Mapping[str, Any], path: Mapping[str, str], token: Mapping[str, Any]) -> bool:
    """Store or replace the token the path names; returns whether it is new.

    Raises InvalidParameters if path and body disagree, the caller does not own the token or another party
    does, and InvalidInput for a contract_id that is not an eMAID.
    """
    for key in _KEYS:
        if str(token[key]).upper() != path[key].upper():
            raise InvalidParameters(f"{key}: must be the same in the body as in the path")
    _owned(caller, storage, path["country_code"], path["party_id"])
    existing = storage.tokens.find(path["uid"])
    if existing is not None and (existing["country_code"].upper(), existing["party_id"].upper()) != (
        path["country_code"].upper(),
        path["party_id"].upper(),
    ):
        raise InvalidParameters("uid: the token belongs to another party")
    storage.tokens.put(TOKEN.load({_WIRE[k]: v for k, v in token.items() if k in _WIRE}))
    return existing is None


def patch_token(
    storage: Storage, caller: Mapping[str, Any], path: Mapping[str, str], changes: Mapping[str, Any]
) -> None:
    """Apply the changed fields to the stored token. Raises UnknownToken, InvalidParameters if a change
    touches country_code, party_id or uid, and InvalidInput for a contract_id that is not an eMAID."""
    _owned(caller, storage, path["country_code"], path["party_id"])
    stored = _stored(storage, path["country_code"], path["party_id"], path["uid"])
    for key in _KEYS:
        if key in changes and str(changes[key]).upper() != path[key].upper():
            raise InvalidParameters(f"{key}: cannot be changed by PATCH")
    current = TOKEN.dump(stored)
    current.pop("lastUpdated", None)
    current.update({_WIRE[k]: v for k, v in changes.items() if k in _WIRE and k not in _KEYS})
    storage.tokens.put(TOKEN.load(current))
