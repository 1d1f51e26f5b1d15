"""Document normalisation shared by the engines, so that both store and return the same shapes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from operator import index
from typing import Any

from .base import Conflict, Document, party_identity, token_key

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
TOKEN_OPTIONAL = (
    "visual_number",
    "group_id",
    "language_code",
    "emaid",
    "energy_contract",
    "default_profile_type",
)


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
    if "energy_contract" in document:
        contract = document["energy_contract"]
        document["energy_contract"] = {k: contract[k] for k in ("supplier_name", "contract_id") if k in contract}
    return document


def patched_token(stored: Mapping[str, Any], changes: Mapping[str, Any]) -> Document:
    """The stored token with ``changes`` applied (None removes an optional key); uid, owner and type stay."""
    token: Document = dict(stored)
    for key, value in changes.items():
        if key in ("uid", "country_code", "party_id", "type"):
            continue
        if value is None:
            if key in TOKEN_OPTIONAL:
                token.pop(key, None)
            continue
        token[key] = value
    return token_document(token)


def check_owned(stored: Mapping[str, Any] | None, token: Mapping[str, Any]) -> None:
    """Raise Conflict unless ``stored`` is absent or has the owner and type of ``token``."""
    if stored is None:
        return
    key = token_key(token["uid"])
    if party_identity(stored["country_code"], stored["party_id"]) != party_identity(
        token["country_code"], token["party_id"]
    ):
        raise Conflict("token", key, "belongs to another party")
    if stored["type"] != token["type"]:
        raise Conflict("token", key, f"exists with type {stored['type']}")


def owns(stored: Mapping[str, Any], owner: tuple[str, str], token_type: str) -> bool:
    """Whether the stored token belongs to ``owner`` (case-insensitive) and has ``token_type``."""
    return (
        party_identity(stored["country_code"], stored["party_id"]) == party_identity(*owner)
        and stored["type"] == token_type
    )


def party_identities(party: Mapping[str, Any]) -> list[str]:
    """The distinct canonical identities of a party's roles, in order."""
    found: list[str] = []
    for role in party.get("roles", []):
        identity = party_identity(role["country_code"], role["party_id"])
        if identity not in found:
            found.append(identity)
    return found


def token_hash_of(token: str) -> str:
    """The hex SHA-256 of a token (used only to migrate clear-text tokens of older releases)."""
    return hashlib.sha256(token.encode()).hexdigest()


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


#: Where the timestamps of each kind of JSON-stored document sit; ``*`` is every item of a list. They are
#: stored as integer milliseconds since the epoch and nothing else in a document is ever decoded: the rest
#: is plain JSON, stored as data, whatever keys it holds.
LOCATION_TIMES = (("last_updated",), ("evses", "*", "last_updated"), ("evses", "*", "connectors", "*", "last_updated"))
PARTY_TIMES = (("registered_at",), ("last_push", "at"))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def convert_at(value: Any, path: tuple[str, ...], change: Callable[[Any], Any]) -> Any:
    """``value`` with ``change`` applied to what sits at ``path`` (copied along the path, left alone elsewhere)."""
    if not path:
        return change(value)
    head, rest = path[0], path[1:]
    if head == "*":
        return [convert_at(item, rest, change) for item in value] if isinstance(value, list) else value
    if isinstance(value, dict) and value.get(head) is not None:
        return {**value, head: convert_at(value[head], rest, change)}
    return value


def millis(value: Any) -> int:
    """Milliseconds since the epoch of a datetime (naive means UTC); raises TypeError for anything else."""
    if not isinstance(value, datetime):
        raise TypeError("a document timestamp must be a datetime")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MILLISECOND


def from_millis(value: Any) -> Any:
    """The UTC datetime of milliseconds since the epoch; anything but an integer is left as it is."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _EPOCH + value * _MILLISECOND
    return value


def dump_document(document: Mapping[str, Any], times: tuple[tuple[str, ...], ...]) -> str:
    """A document as plain JSON text, its timestamps at ``times`` as milliseconds."""
    encoded: Any = dict(document)
    for path in times:
        encoded = convert_at(encoded, path, millis)
    return json.dumps(encoded, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def load_document(text: str, times: tuple[tuple[str, ...], ...]) -> Document:
    """A document stored by ``dump_document``."""
    document: Any = json.loads(text)
    for path in times:
        document = convert_at(document, path, from_millis)
    result: Document = document
    return result


#: The fields of a push result (the outcome of the latest push of a location to a party), as both engines
#: store them.
PUSH_RESULT_FIELDS = (
    "party",
    "location_id",
    "revision",
    "state",
    "at",
    "since",
    "attempts",
    "http_status",
    "status_code",
    "status_message",
    "error",
)
