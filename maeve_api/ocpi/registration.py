"""The OCPI credentials handshake in both directions, and our versions and endpoints.

Each party we complete a handshake with is stored with the token we call it with and the token it
calls us with. The token a partner calls us with only becomes valid once the handshake has succeeded,
except for the few seconds of our own POST, when it must be valid for the partner's calls back.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from maeve_api.errors import MissingEndpoints, PartnerFailed
from maeve_api.ocpi.client import BASE64, RAW, PartnerClient, PartnerUnauthorized, shorten
from maeve_api.ocpi.errors import RegistrationState
from maeve_api.schemas import utc_now
from maeve_api.settings import Settings
from maeve_api.storage import Storage

log = logging.getLogger(__name__)

#: The versions we serve, preferred first; 2.2 for partners that never moved to 2.2.1.
VERSIONS = ("2.2.1", "2.2")
#: Our modules: (identifier, role, path under the version).
MODULES = (
    ("credentials", "SENDER", "credentials"),
    ("credentials", "RECEIVER", "credentials"),
    ("locations", "SENDER", "locations"),
    ("tokens", "RECEIVER", "tokens"),
)


def versions(settings: Settings) -> list[dict[str, str]]:
    """Our versions endpoint's data."""
    base = settings.ocpi_external_url.rstrip("/")
    return [{"version": version, "url": f"{base}/ocpi/{version}"} for version in VERSIONS]


def version_details(settings: Settings, version: str) -> dict[str, Any]:
    """Our version details endpoint's data for ``version``."""
    base = f"{settings.ocpi_external_url.rstrip('/')}/ocpi/{version}"
    return {
        "version": version,
        "endpoints": [{"identifier": ident, "role": role, "url": f"{base}/{path}"} for ident, role, path in MODULES],
    }


def our_credentials(settings: Settings, token: str) -> dict[str, Any]:
    """Our credentials object carrying ``token``, the one the partner is to call us with."""
    return {
        "token": token,
        "url": f"{settings.ocpi_external_url.rstrip('/')}/ocpi/versions",
        "roles": [
            {
                "role": "CPO",
                "business_details": {"name": settings.ocpi_business_name},
                "party_id": settings.ocpi_party_id,
                "country_code": settings.ocpi_country_code,
            }
        ],
    }


def new_token() -> str:
    """A fresh credentials token: 64 random URL-safe characters."""
    return secrets.token_urlsafe(48)


def token_hash(token: str) -> str:
    """The hex SHA-256 under which a party's inbound token is looked up."""
    return hashlib.sha256(token.encode()).hexdigest()


def party_key(roles: Sequence[Mapping[str, Any]]) -> str:
    """A party's key: ``CC*PID`` of its first role, upper case."""
    return f"{roles[0]['country_code'].upper()}*{roles[0]['party_id'].upper()}"


def endpoint(party: Mapping[str, Any], identifier: str, role: str) -> str | None:
    """The URL of a partner's module in a role, or None."""
    for found in party.get("endpoints", []):
        if found.get("identifier") == identifier and found.get("role") == role:
            return str(found["url"])
    return None


def _discover(
    client: PartnerClient, versions_url: str, token: str, correlation_id: str | None = None
) -> tuple[str, list[dict[str, Any]], str]:
    """GET the partner's versions and the details of the best one we share; returns (version, endpoints, encoding).

    The token goes base64 first; if the partner refuses that with a 401, it goes raw, as 2.2 peers want it.
    """
    step = "GET versions"
    try:
        encoding = BASE64
        listed = client.call(step, "GET", versions_url, token, encoding, correlation_id=correlation_id)
    except PartnerUnauthorized:
        encoding = RAW
        listed = client.call(step, "GET", versions_url, token, encoding, correlation_id=correlation_id)
    offered: dict[str, str] = {}
    for item in listed if isinstance(listed, list) else []:
        if isinstance(item, dict) and isinstance(item.get("version"), str) and isinstance(item.get("url"), str):
            offered[item["version"]] = item["url"]
    chosen = next((version for version in VERSIONS if version in offered), None)
    if chosen is None:
        # What the partner offers is its own text: logged, shortened, never repeated in our answer.
        log.warning("%s: the partner offers versions %r", step, shorten(", ".join(sorted(offered))))
        raise PartnerFailed(step, "no version in common: we speak 2.2.1 and 2.2")
    step = f"GET version {chosen} details"
    details = client.call(step, "GET", offered[chosen], token, encoding, correlation_id=correlation_id)
    endpoints = details.get("endpoints") if isinstance(details, dict) else None
    if not isinstance(endpoints, list) or not all(
        isinstance(e, dict) and isinstance(e.get("identifier"), str) and isinstance(e.get("url"), str)
        for e in endpoints
    ):
        raise PartnerFailed(step, "the answer holds no list of endpoints with identifier and url")
    found = [{"identifier": e["identifier"], "role": e.get("role"), "url": e["url"]} for e in endpoints]
    return chosen, found, encoding


def _credentials_url(endpoints: list[dict[str, Any]]) -> str:
    """The partner's credentials module; raises MissingEndpoints."""
    urls = [e["url"] for e in endpoints if e["identifier"] == "credentials"]
    if not urls:
        raise MissingEndpoints("find the credentials endpoint", "the partner's version details list no credentials")
    receiver = [e["url"] for e in endpoints if e["identifier"] == "credentials" and e.get("role") == "RECEIVER"]
    return (receiver or urls)[0]


def _checked_credentials(step: str, data: Any) -> dict[str, Any]:
    """The partner's credentials object from an answer; raises PartnerFailed unless it has a token and roles."""
    if not isinstance(data, dict) or not isinstance(data.get("token"), str) or not 1 <= len(data["token"]) <= 64:
        raise PartnerFailed(step, "the answer holds no credentials token")
    roles = data.get("roles")
    if (
        not isinstance(roles, list)
        or not roles
        or not all(
            isinstance(r, dict) and isinstance(r.get("country_code"), str) and isinstance(r.get("party_id"), str)
            for r in roles
        )
    ):
        raise PartnerFailed(step, "the answer's credentials hold no roles with country_code and party_id")
    return data


def _party(
    credentials: Mapping[str, Any],
    version: str,
    endpoints: list[dict[str, Any]],
    outbound: tuple[str, str],
    inbound_token: str,
) -> dict[str, Any]:
    roles = [
        {
            "role": role.get("role"),
            "country_code": role["country_code"],
            "party_id": role["party_id"],
            "business_details": role.get("business_details") or {},
        }
        for role in credentials["roles"]
    ]
    return {
        "key": party_key(roles),
        "roles": roles,
        "version": version,
        "versions_url": credentials["url"],
        "endpoints": endpoints,
        "outbound_token": outbound[0],
        "token_encoding": outbound[1],
        "inbound_token": inbound_token,
        "inbound_token_hash": token_hash(inbound_token),
        "registered_at": utc_now(),
    }


def register_with_partner(storage: Storage, settings: Settings, token_a: str, versions_url: str) -> dict[str, Any]:
    """Start the handshake with a partner that gave us ``token_a`` and its versions URL; returns the stored party.

    Raises PartnerFailed naming the failed step. On failure nothing is stored and the token we offered
    the partner no longer works.
    """
    client = PartnerClient.for_settings(settings)
    try:
        version, endpoints, encoding = _discover(client, versions_url, token_a)
        credentials_url = _credentials_url(endpoints)
        token_b = new_token()
        # The partner calls our versions and details with B while it handles our POST.
        storage.registrations.put(token_b, "PENDING")
        try:
            step = "POST credentials"
            answer = client.call(step, "POST", credentials_url, token_a, encoding, our_credentials(settings, token_b))
            credentials = _checked_credentials(step, answer)
            party = _party(
                {**credentials, "url": credentials.get("url") or versions_url},
                version,
                endpoints,
                (credentials["token"], encoding),
                token_b,
            )
            storage.parties.put(party)
        finally:
            storage.registrations.remove(token_b)
        return party
    finally:
        client.close()


def accept_registration(
    storage: Storage,
    settings: Settings,
    caller: Mapping[str, Any],
    credentials: Mapping[str, Any],
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """Answer a partner's POST of its credentials with token A: fetch its endpoints with its token B, store it,
    retire A and return our credentials with a new token C.

    Raises RegistrationState if the caller is a registered party and PartnerFailed if the partner cannot be used.
    """
    if caller.get("party"):
        raise RegistrationState("already registered; update the credentials with PUT or unregister with DELETE")
    party = _fetch_party(settings, credentials, correlation_id)
    storage.parties.put(party)
    storage.registrations.remove(caller["token"])
    return our_credentials(settings, party["inbound_token"])


def update_registration(
    storage: Storage,
    settings: Settings,
    caller: Mapping[str, Any],
    credentials: Mapping[str, Any],
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """Answer a registered partner's PUT: fetch its endpoints again with its new token and rotate the token it
    calls us with. Raises RegistrationState if the caller is not a registered party, PartnerFailed as above."""
    if not caller.get("party"):
        raise RegistrationState("not registered; register by POSTing the credentials")
    party = _fetch_party(settings, credentials, correlation_id)
    if party["key"] != caller["party"]:
        storage.parties.remove(caller["party"])
        storage.pushes.remove_party(caller["party"])
    storage.parties.put(party)
    return our_credentials(settings, party["inbound_token"])


def remove_registration(storage: Storage, caller: Mapping[str, Any]) -> None:
    """Unregister the calling party; its token stops working. Raises RegistrationState if it is not registered."""
    if not caller.get("party"):
        raise RegistrationState("not registered")
    storage.parties.remove(caller["party"])
    storage.pushes.remove_party(caller["party"])


def _fetch_party(settings: Settings, credentials: Mapping[str, Any], correlation_id: str | None) -> dict[str, Any]:
    client = PartnerClient.for_settings(settings)
    try:
        version, endpoints, encoding = _discover(client, credentials["url"], credentials["token"], correlation_id)
    finally:
        client.close()
    _credentials_url(endpoints)
    return _party(credentials, version, endpoints, (credentials["token"], encoding), new_token())
