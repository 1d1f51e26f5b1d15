"""The OCPI tokens module in the RECEIVER role: partners' tokens kept in the same store as ``setToken``'s.

A partner reads and writes only the tokens of its own identities. The uid is OCPI's CiString, matched
case-insensitively; the ownership and type check and the write are one atomic store operation. Every Token
field the partner sent is kept as sent, ``contract_id`` included; lookups by contract id use its normalised
eMAID form when it is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from maeve_api.domain.emaid import normalize_emaid
from maeve_api.domain.errors import InvalidInput
from maeve_api.ocpi.auth import identities
from maeve_api.ocpi.errors import InvalidParameters, OutOfScope, UnknownToken
from maeve_api.storage import Storage, party_identity, token_key

#: The type of a token when the request names none (OCPI 2.2.1, Token module).
DEFAULT_TYPE = "RFID"
# OCPI Token field -> stored token field, where they differ.
_STORED = {"whitelist": "cache_mode", "language": "language_code"}
_OCPI = {stored: ocpi for ocpi, stored in _STORED.items()}
_FIELDS = (
    "country_code",
    "party_id",
    "uid",
    "type",
    "contract_id",
    "visual_number",
    "issuer",
    "group_id",
    "valid",
    "whitelist",
    "language",
    "default_profile_type",
    "energy_contract",
)
_KEYS = ("country_code", "party_id", "uid")


def _owned(storage: Storage, caller: Mapping[str, Any], country_code: str, party_id: str) -> None:
    """Raise OutOfScope unless the token's party is one of the caller's identities."""
    owned = {party_identity(*identity) for identity in identities(storage, caller)}
    if not owned:
        raise OutOfScope("this token reaches the locations module only; it was registered without a party identity")
    if party_identity(country_code, party_id) not in owned:
        raise OutOfScope("country_code, party_id: must be one of your identities")


def parse_datetime(value: str) -> datetime:
    """An OCPI DateTime (an offset left out means UTC) at the millisecond precision every store keeps."""
    parsed = datetime.fromisoformat(value)
    parsed = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def format_datetime(value: datetime) -> str:
    """An OCPI DateTime in UTC with a ``Z``, with milliseconds when there are any."""
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _emaid(contract_id: str) -> str | None:
    try:
        return normalize_emaid(contract_id)
    except InvalidInput:
        return None


def _stored_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The stored-token fields of OCPI Token fields (absent or null ones left out)."""
    stored = {_STORED.get(name, name): fields[name] for name in _FIELDS if fields.get(name) is not None}
    if fields.get("last_updated") is not None:
        stored["last_updated"] = parse_datetime(fields["last_updated"])
    if "contract_id" in stored:
        stored["emaid"] = _emaid(stored["contract_id"])
    return stored


def ocpi_token(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The OCPI Token of a stored one."""
    token: dict[str, Any] = {}
    for name in _FIELDS:
        key = _STORED.get(name, name)
        if key in stored:
            token[name] = stored[key]
    token["last_updated"] = format_datetime(stored["last_updated"])
    return token


def _check_path(path: Mapping[str, str], fields: Mapping[str, Any], token_type: str | None) -> None:
    for key in _KEYS:
        if key in fields and str(fields[key]).upper() != path[key].upper():
            raise InvalidParameters(f"{key}: the body's differs from the path's")
    if token_type is not None and "type" in fields and fields["type"] != token_type:
        raise InvalidParameters("type: the body's differs from the type parameter")


def get_token(
    storage: Storage, caller: Mapping[str, Any], country_code: str, party_id: str, uid: str, token_type: str | None
) -> dict[str, Any]:
    """The OCPI Token of that party, uid and type (RFID by default).

    Raises OutOfScope if it is not the caller's to read and UnknownToken if there is none."""
    _owned(storage, caller, country_code, party_id)
    stored = storage.tokens.find(uid)
    if stored is None or party_identity(stored["country_code"], stored["party_id"]) != party_identity(
        country_code, party_id
    ):
        raise UnknownToken(f"unknown token {country_code}/{party_id}/{token_key(uid)}")
    if stored["type"] != (token_type or DEFAULT_TYPE):
        raise UnknownToken(
            f"unknown token {country_code}/{party_id}/{token_key(uid)} of type {token_type or DEFAULT_TYPE}"
        )
    return ocpi_token(stored)


def put_token(
    storage: Storage,
    caller: Mapping[str, Any],
    path: Mapping[str, str],
    token: Mapping[str, Any],
    token_type: str | None,
) -> bool:
    """Store or replace the token the path names; returns whether it is new.

    Raises InvalidParameters if path and body disagree, OutOfScope if the caller does not own the path's party,
    and storage's Conflict if the stored token of that uid is another party's or of another type."""
    _check_path(path, token, token_type)
    _owned(storage, caller, path["country_code"], path["party_id"])
    return storage.tokens.put_owned(_stored_fields(token))


def patch_token(
    storage: Storage,
    caller: Mapping[str, Any],
    path: Mapping[str, str],
    changes: Mapping[str, Any],
    token_type: str | None,
) -> None:
    """Apply the changed fields to the stored token, atomically. Raises OutOfScope as above, UnknownToken (through
    storage's NotFound) if the path's party has no such token of that type, and InvalidParameters if a change
    touches country_code, party_id, uid or type."""
    _check_path(path, changes, token_type or DEFAULT_TYPE)
    _owned(storage, caller, path["country_code"], path["party_id"])
    stored = _stored_fields({k: v for k, v in changes.items() if k not in (*_KEYS, "type")})
    if "contract_id" in stored and stored["emaid"] is None:
        stored["emaid"] = None  # no longer an eMAID: removed, so contract-id lookups no longer find it
    owner = (path["country_code"], path["party_id"])
    storage.tokens.patch(path["uid"], owner, token_type or DEFAULT_TYPE, stored)
