"""Who is calling the OCPI listener: the ``Authorization: Token …`` check behind the spec's security schemes.

A token is accepted base64-encoded (OCPI 2.2.1) or raw (2.1.1 and many 2.2 peers). Tokens are compared
in constant time and never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from typing import Any

from starlette.concurrency import run_in_threadpool

from maeve_api.ocpi.registration import token_hash
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
    """``{"token", "party"}`` for a registered party's token, ``{"token", "registration"}`` for a token A
    registered through the internal API (status PENDING or REGISTERED), or None."""
    for token in candidates(header):
        party = storage.parties.find_by_inbound_token_hash(token_hash(token))
        if party is not None and hmac.compare_digest(party["inbound_token"].encode(), token.encode()):
            return {"token": token, "party": party["key"]}
        registration = storage.registrations.find(token)
        if registration is not None and hmac.compare_digest(registration["token"].encode(), token.encode()):
            return {"token": token, "registration": registration["status"]}
    return None


async def handshake_token(apikey: str, request: Any) -> dict[str, Any] | None:
    """Versions, version details and credentials: any known token, a PENDING token A included."""
    storage: Storage = request.state.storage
    caller: dict[str, Any] | None = await run_in_threadpool(identify, storage, apikey)
    return caller


async def party_token(apikey: str, request: Any) -> dict[str, Any] | None:
    """Functional modules: a registered party, or a token A registered through the internal API as REGISTERED."""
    caller = await handshake_token(apikey, request)
    if caller is None or caller.get("registration") == "PENDING":
        return None
    return caller
