"""The OCPI credentials handshake in both directions, and our versions and endpoints.

Each party we complete a handshake with is stored with the token we call it with and the hash of the token
it calls us with. The token a partner calls us with only becomes valid once the handshake has succeeded,
except during our own POST, when it must be valid for the partner's calls back (and expires by itself
after ``TOKEN_B_LIFETIME`` should the handshake never end).

A party identity (country code and party id, compared case-insensitively) is held by one registered party
at most, and never by a partner when it is ours; the store refuses, atomically, any write that would
give one to a second party.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from maeve_api.documents import OCPI_SPEC, load_spec
from maeve_api.domain.errors import Conflict, InvalidInput, MissingEndpoints, PartnerFailed
from maeve_api.domain.schemas import utc_now
from maeve_api.ocpi.client import BASE64, RAW, PartnerClient, PartnerUnauthorized, check_operator_url, shorten
from maeve_api.ocpi.errors import IdentityRefused, RegistrationState
from maeve_api.settings import Settings
from maeve_api.storage import Conflict as StoreConflict
from maeve_api.storage import NotFound, Storage, party_identity

#: How long the token B we offer a partner in our own POST of credentials stays valid at most.
TOKEN_B_LIFETIME = timedelta(minutes=5)
#: The credentials methods open to a registered party, and to a token A.
REGISTERED_ALLOW = "GET, PUT, DELETE"
UNREGISTERED_ALLOW = "GET, POST"
#: OCPI's Image categories, for a business logo.
IMAGE_CATEGORIES = ("CHARGER", "ENTRANCE", "LOCATION", "NETWORK", "OPERATOR", "OTHER", "OWNER")

log = logging.getLogger(__name__)

# What a partner answers during the handshake is not validated by our spec, which validates only what is sent
# to us, so it is held here to the bounds the spec gives the same OCPI objects before any of it is used or stored.
_SCHEMAS: dict[str, Any] = load_spec(OCPI_SPEC)["components"]["schemas"]
#: The most versions, endpoints and roles a partner's answer may list.
MAX_VERSIONS: int = _SCHEMAS["VersionList"]["maxItems"]
MAX_ENDPOINTS: int = _SCHEMAS["VersionDetails"]["properties"]["endpoints"]["maxItems"]
MAX_ROLES: int = _SCHEMAS["Credentials"]["properties"]["roles"]["maxItems"]
#: The longest version name, module identifier, URL and token a partner's answer may hold.
MAX_VERSION_NAME: int = _SCHEMAS["Version"]["properties"]["version"]["maxLength"]
MAX_IDENTIFIER: int = _SCHEMAS["Endpoint"]["properties"]["identifier"]["maxLength"]
MAX_URL: int = _SCHEMAS["Endpoint"]["properties"]["url"]["maxLength"]
MAX_TOKEN: int = _SCHEMAS["Credentials"]["properties"]["token"]["maxLength"]
ENDPOINT_ROLES: tuple[str, ...] = tuple(_SCHEMAS["Endpoint"]["properties"]["role"]["enum"])
PARTY_ROLES: tuple[str, ...] = tuple(_SCHEMAS["CredentialsRole"]["properties"]["role"]["enum"])
_TOKEN = re.compile(_SCHEMAS["Credentials"]["properties"]["token"]["pattern"])
_COUNTRY_CODE = re.compile(_SCHEMAS["CredentialsRole"]["properties"]["country_code"]["pattern"])
_PARTY_ID = re.compile(_SCHEMAS["CredentialsRole"]["properties"]["party_id"]["pattern"])

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
    return party_identity(roles[0]["country_code"], roles[0]["party_id"])


def shown(identity: str) -> str:
    """A canonical ``CC*PID`` identity as OCPI writes it, ``CC/PID``."""
    return identity.replace("*", "/")


def _text(value: Any, longest: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= longest


def business_details(value: Any) -> dict[str, Any] | None:
    """The OCPI BusinessDetails in ``value`` (name, website, logo Image) with nothing else, or None if it is not one.

    Partners' answers are not validated by our spec, so what they send is checked here before it is stored.
    """
    if not isinstance(value, dict) or not _text(value.get("name"), 100):
        return None
    details: dict[str, Any] = {"name": value["name"]}
    if value.get("website") is not None:
        if not _text(value["website"], 255):
            return None
        details["website"] = value["website"]
    logo = value.get("logo")
    if logo is not None:
        if (
            not isinstance(logo, dict)
            or not _text(logo.get("url"), 255)
            or logo.get("category") not in IMAGE_CATEGORIES
            or not _text(logo.get("type"), 4)
        ):
            return None
        image: dict[str, Any] = {"url": logo["url"], "category": logo["category"], "type": logo["type"]}
        if logo.get("thumbnail") is not None:
            if not _text(logo["thumbnail"], 255):
                return None
            image["thumbnail"] = logo["thumbnail"]
        for size in ("width", "height"):
            if logo.get(size) is not None:
                if not isinstance(logo[size], int) or isinstance(logo[size], bool) or not 0 <= logo[size] <= 99999:
                    return None
                image[size] = logo[size]
        details["logo"] = image
    return details


def claimed_identities(roles: Iterable[Mapping[str, Any]]) -> list[str]:
    """The distinct canonical identities of credentials roles, in order."""
    found: list[str] = []
    for role in roles:
        identity = party_identity(role["country_code"], role["party_id"])
        if identity not in found:
            found.append(identity)
    return found


def check_claim(
    storage: Storage,
    settings: Settings,
    roles: Iterable[Mapping[str, Any]],
    own_key: str | None = None,
    allowed: str | None = None,
) -> None:
    """Raise IdentityRefused unless every identity of the roles is free (or held by the party ``own_key``), is not
    ours, and is ``allowed`` when the registration names one. The store checks again atomically when writing."""
    ours = party_identity(settings.ocpi_country_code, settings.ocpi_party_id)
    for identity in claimed_identities(roles):
        if identity == ours:
            raise IdentityRefused(f"{shown(identity)} is the identity of this platform")
        if allowed is not None and identity != allowed:
            raise IdentityRefused(f"this token may register only as {shown(allowed)}, not as {shown(identity)}")
        holder = storage.parties.find_by_identity(*identity.split("*"))
        if holder is not None and holder["key"] != own_key:
            raise IdentityRefused(f"{shown(identity)} is registered by another party")


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
    except PartnerUnauthorized as first:
        encoding = RAW
        try:
            listed = client.call(step, "GET", versions_url, token, encoding, correlation_id=correlation_id)
        except PartnerFailed as second:
            raise PartnerFailed(
                step, f"with the token in base64, {first.detail}; then with the raw token, {second.detail}"
            ) from None
    if isinstance(listed, list) and len(listed) > MAX_VERSIONS:
        raise PartnerFailed(step, f"data: must have at most {MAX_VERSIONS} items")
    offered: dict[str, str] = {}
    for index, item in enumerate(listed if isinstance(listed, list) else []):
        if isinstance(item, dict) and isinstance(item.get("version"), str) and isinstance(item.get("url"), str):
            _bounded(step, f"data[{index}].version", item["version"], MAX_VERSION_NAME)
            _bounded(step, f"data[{index}].url", item["url"], MAX_URL)
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
    if len(endpoints) > MAX_ENDPOINTS:
        raise PartnerFailed(step, f"data.endpoints: must have at most {MAX_ENDPOINTS} items")
    for index, item in enumerate(endpoints):
        _bounded(step, f"data.endpoints[{index}].identifier", item["identifier"], MAX_IDENTIFIER)
        _bounded(step, f"data.endpoints[{index}].url", item["url"], MAX_URL)
        if item.get("role") is not None and item["role"] not in ENDPOINT_ROLES:
            raise PartnerFailed(step, f"data.endpoints[{index}].role: must be one of {', '.join(ENDPOINT_ROLES)}")
    found = [{"identifier": e["identifier"], "role": e.get("role"), "url": e["url"]} for e in endpoints]
    return chosen, found, encoding


def _bounded(step: str, field: str, value: str, longest: int) -> None:
    """Raise PartnerFailed naming ``field`` (never its value) unless ``value`` is 1 to ``longest`` characters."""
    if not 0 < len(value) <= longest:
        raise PartnerFailed(step, f"{field}: must be 1 to {longest} characters long")


def _credentials_url(endpoints: list[dict[str, Any]]) -> str:
    """The partner's credentials module; raises MissingEndpoints."""
    urls = [e["url"] for e in endpoints if e["identifier"] == "credentials"]
    if not urls:
        raise MissingEndpoints("find the credentials endpoint", "the partner's version details list no credentials")
    receiver = [e["url"] for e in endpoints if e["identifier"] == "credentials" and e.get("role") == "RECEIVER"]
    return (receiver or urls)[0]


def _checked_credentials(step: str, data: Any) -> dict[str, Any]:
    """The partner's credentials object from an answer, held to the spec's Credentials bounds; raises PartnerFailed
    naming the first field that breaks them."""
    if not isinstance(data, dict) or not isinstance(data.get("token"), str):
        raise PartnerFailed(step, "the answer holds no credentials token")
    _bounded(step, "data.token", data["token"], MAX_TOKEN)
    if not _TOKEN.fullmatch(data["token"]):
        raise PartnerFailed(step, "data.token: must be printable ASCII characters without spaces")
    if data.get("url") is not None and (not isinstance(data["url"], str) or not 0 < len(data["url"]) <= MAX_URL):
        raise PartnerFailed(step, f"data.url: must be a URL of 1 to {MAX_URL} characters")
    roles = data.get("roles")
    if not isinstance(roles, list) or not roles or not all(isinstance(r, dict) for r in roles):
        raise PartnerFailed(step, "the answer's credentials hold no roles with country_code and party_id")
    if len(roles) > MAX_ROLES:
        raise PartnerFailed(step, f"data.roles: must have at most {MAX_ROLES} items")
    for index, role in enumerate(roles):
        where = f"data.roles[{index}]"
        if role.get("role") not in PARTY_ROLES:
            raise PartnerFailed(step, f"{where}.role: must be one of {', '.join(PARTY_ROLES)}")
        if not isinstance(role.get("country_code"), str) or not _COUNTRY_CODE.fullmatch(role["country_code"]):
            raise PartnerFailed(step, f"{where}.country_code: must be two letters")
        if not isinstance(role.get("party_id"), str) or not _PARTY_ID.fullmatch(role["party_id"]):
            raise PartnerFailed(step, f"{where}.party_id: must be three letters or digits")
        if business_details(role.get("business_details")) is None:
            raise PartnerFailed(step, f"{where}.business_details: must be OCPI BusinessDetails within its bounds")
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
            "business_details": business_details(role.get("business_details")) or {},
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
        "inbound_token_hash": token_hash(inbound_token),
        "registered_at": utc_now(),
    }


def register_token(storage: Storage, settings: Settings, registration: Mapping[str, Any]) -> None:
    """``registerParty``: start the handshake with the partner at ``url``, or store the token A it will use.

    With ``country_code`` and ``party_id`` the token may register only as that party (and, REGISTERED without a
    handshake, owns that party's tokens only). Raises InvalidInput if only one of them is given or they are ours,
    Conflict if another registered party holds them, and PartnerFailed as register_with_partner does.
    """
    given = [name for name in ("country_code", "party_id") if registration.get(name) is not None]
    if len(given) == 1:
        other = "party_id" if given == ["country_code"] else "country_code"
        raise InvalidInput(other, f"must be given together with {given[0]}")
    identity = (registration["country_code"], registration["party_id"]) if given else None
    if identity is not None:
        named = party_identity(*identity)
        if named == party_identity(settings.ocpi_country_code, settings.ocpi_party_id):
            raise InvalidInput("party_id", "must not be the identity of this platform")
        if storage.parties.find_by_identity(*identity) is not None:
            raise Conflict(f"{shown(named)} is registered by another party")
    if "url" in registration:
        check_operator_url(registration["url"], settings.ocpi_allow_private_networks)
        register_with_partner(storage, settings, registration["token"], registration["url"], identity)
    else:
        storage.registrations.put(token_hash(registration["token"]), registration.get("status"), identity)


def register_with_partner(
    storage: Storage,
    settings: Settings,
    token_a: str,
    versions_url: str,
    identity: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Start the handshake with a partner that gave us ``token_a`` and its versions URL; returns the stored party.

    Raises PartnerFailed naming the failed step, and Conflict if the partner claims an identity that is ours,
    another party's or not ``identity``. On failure nothing is stored and the token we offered the partner no
    longer works.
    """
    client = PartnerClient.for_settings(settings)
    try:
        version, endpoints, encoding = _discover(client, versions_url, token_a)
        credentials_url = _credentials_url(endpoints)
        token_b = new_token()
        # The partner calls our versions and details with B while it handles our POST; B expires by itself if
        # this worker dies before the handshake ends.
        storage.registrations.put(token_hash(token_b), "PENDING", expires_in=TOKEN_B_LIFETIME)
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
            try:
                check_claim(
                    storage, settings, party["roles"], allowed=None if identity is None else party_identity(*identity)
                )
                _create(storage, party)
            except IdentityRefused as exc:
                raise Conflict(f"the partner's credentials: {exc}") from None
        finally:
            storage.registrations.remove(token_hash(token_b))
        return party
    finally:
        client.close()


def _create(storage: Storage, party: dict[str, Any]) -> None:
    """Store a new party under a key of its own; raises IdentityRefused if an identity it claims is taken."""
    base = party["key"]
    for attempt in range(1, 100):
        try:
            storage.parties.create(party)
            return
        except StoreConflict as exc:
            if exc.kind != "party":
                raise IdentityRefused(f"{shown(exc.key)} is registered by another party") from None
            # The key names a party that has since given that identity up: take another key.
            party["key"] = f"{base}~{attempt + 1}"
    raise IdentityRefused(f"{shown(base)} cannot be registered")


def accept_registration(
    storage: Storage,
    settings: Settings,
    caller: Mapping[str, Any],
    credentials: Mapping[str, Any],
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """Answer a partner's POST of its credentials with token A: fetch its endpoints with its token B, store it,
    retire A and return our credentials with a new token C.

    Raises RegistrationState if the caller is a registered party, IdentityRefused (changing nothing) if it claims
    an identity that is ours, another party's or not the one its token A was registered for, and PartnerFailed
    if the partner cannot be used.
    """
    if caller.get("party"):
        raise RegistrationState(
            "already registered; update the credentials with PUT or unregister with DELETE", REGISTERED_ALLOW
        )
    allowed = party_identity(*caller["identity"]) if caller.get("identity") else None
    check_claim(storage, settings, credentials["roles"], allowed=allowed)
    party, token_c = _fetch_party(settings, credentials, correlation_id)
    _create(storage, party)
    storage.registrations.remove(token_hash(caller["token"]))
    return our_credentials(settings, token_c)


def update_registration(
    storage: Storage,
    settings: Settings,
    caller: Mapping[str, Any],
    credentials: Mapping[str, Any],
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """Answer a registered partner's PUT: fetch its endpoints again with its new token and rotate the token it
    calls us with. Its roles may change only to identities that are free or already its own.

    Raises RegistrationState if the caller is not a registered party (or unregistered meanwhile),
    IdentityRefused (changing nothing) for a refused identity and PartnerFailed as above."""
    if not caller.get("party"):
        raise RegistrationState("not registered; register by POSTing the credentials", UNREGISTERED_ALLOW)
    key = caller["party"]
    check_claim(storage, settings, credentials["roles"], own_key=key)
    party, token_c = _fetch_party(settings, credentials, correlation_id)
    party["key"] = key
    stored = storage.parties.find(key)
    if stored is not None:
        party["registered_at"] = stored["registered_at"]
    try:
        storage.parties.update(key, token_hash(caller["token"]), party)
    except StoreConflict as exc:
        raise IdentityRefused(f"{shown(exc.key)} is registered by another party") from None
    except NotFound:
        raise RegistrationState("the registration changed meanwhile; try again") from None
    return our_credentials(settings, token_c)


def remove_registration(storage: Storage, caller: Mapping[str, Any]) -> None:
    """Unregister the calling party; its token stops working. Raises RegistrationState if it is not registered."""
    if not caller.get("party"):
        raise RegistrationState("not registered", UNREGISTERED_ALLOW)
    storage.parties.remove(caller["party"])
    storage.pushes.remove_party(caller["party"])


def _fetch_party(
    settings: Settings, credentials: Mapping[str, Any], correlation_id: str | None
) -> tuple[dict[str, Any], str]:
    """The party the credentials describe, read from its endpoints, and the new token C it is to call us with."""
    client = PartnerClient.for_settings(settings)
    try:
        version, endpoints, encoding = _discover(client, credentials["url"], credentials["token"], correlation_id)
    finally:
        client.close()
    _credentials_url(endpoints)
    token_c = new_token()
    return _party(credentials, version, endpoints, (credentials["token"], encoding), token_c), token_c
