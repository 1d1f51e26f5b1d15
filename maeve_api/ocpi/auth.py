"""Who is calling the OCPI listener: the ``Authorization: Token …`` check behind the spec's security schemes.

A token is accepted base64-encoded (OCPI 2.2.1) or raw (2.1.1 and many 2.2 peers). Tokens are compared
in constant time and never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool

from maeve_api.ocpi.errors import RegistrationState
from maeve_api.ocpi.registration import REGISTERED_ALLOW, token_hash
from maeve_api.storage import Storage

_TOKEN = re.compile(r"(?i)token +([!-~]{1,200})")
_PRINTABLE = re.compile(r"[!-~]{1,64}")


def candidates(header: str) -> list[str]:
    """The tokens an ``Authorization`` value may carry: its base64 decoding if that is a printable token, then
    the value itself. Empty for anything but ``Token <value>``."""
    match = _TOKEN.fullmatch(header.strip())
    if match is None:
        return []
    value = match.group(1)
    found = []
    try:
        decoded = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        decoded = ""
    if _PRINTABLE.fullmatch(decoded):
        found.append(decoded)
    if _PRINTABLE.fullmatch(value):
        found.append(value)
    return found


def identify(storage: Storage, header: str) -> dict[str, Any] | None:
    """``{"token", "party"}`` for a registered party's token, ``{"token", "registration", "identity"?}`` for a
    token A registered through the internal API (status PENDING or REGISTERED, ``identity`` the
    ``(country_code, party_id)`` it was registered for), or None.

    Only the tokens' SHA-256 hashes are stored; the lookup is by the hash of what the caller presented."""
    for token in candidates(header):
        hashed = token_hash(token)
        party = storage.parties.find_by_inbound_token_hash(hashed)
        if party is not None and hmac.compare_digest(party["inbound_token_hash"], hashed):
            return {"token": token, "party": party["key"]}
        registration = storage.registrations.find(hashed)
        if registration is not None and hmac.compare_digest(registration["token_hash"], hashed):
            caller: dict[str, Any] = {"token": token, "registration": registration["status"]}
            if registration.get("country_code"):
                caller["identity"] = (registration["country_code"], registration["party_id"])
            return caller
    return None


def identities(storage: Storage, caller: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The ``(country_code, party_id)`` identities whose objects the caller owns: a party's roles, or the one a
    REGISTERED token A was registered for; none for a token A registered without one."""
    if caller.get("party"):
        party = storage.parties.find(caller["party"])
        return [(role["country_code"], role["party_id"]) for role in (party or {}).get("roles", [])]
    if caller.get("identity"):
        country_code, party_id = caller["identity"]
        return [(country_code, party_id)]
    return []


async def handshake_token(apikey: str, request: Any) -> dict[str, Any] | None:
    """Versions, version details and credentials: any known token, a PENDING token A included.

    A registered party's POST of credentials is refused here, before its body is read: OCPI answers it 405
    whatever the body holds."""
    storage: Storage = request.state.storage
    caller: dict[str, Any] | None = await run_in_threadpool(identify, storage, apikey)
    if caller is not None and caller.get("party") and request.method == "POST":
        raise RegistrationState(
            "already registered; update the credentials with PUT or unregister with DELETE", REGISTERED_ALLOW
        )
    return caller


async def party_token(apikey: str, request: Any) -> dict[str, Any] | None:
    """Functional modules: a registered party, or a token A registered through the internal API as REGISTERED.

    The caller's identities are kept in the request state for the ``OCPI-to-*`` headers of the answer."""
    storage: Storage = request.state.storage
    caller: dict[str, Any] | None = await run_in_threadpool(identify, storage, apikey)
    if caller is None or caller.get("registration") == "PENDING":
        return None
    owned = await run_in_threadpool(identities, storage, caller)
    if owned:
        request.state.ocpi_identities = owned
    return caller
