"""Station authentication at the websocket upgrade, from the auth record the internal API stores.

Security profiles use MaEVe's numbering: 0 basic auth over ws, 1 basic auth over TLS, 2 a TLS client
certificate registered with ``uploadCertificate`` whose subject CN is the station id. Behind a trusted
TLS-terminating proxy the scheme and the client certificate come from its headers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from cryptography import x509
from cryptography.x509.oid import NameOID

from maeve_api.domain.certificates import client_certificate_hash
from maeve_api.storage import Storage

#: Headers a trusted proxy sets (lower case, as ASGI gives them).
FORWARDED_PROTO = "x-forwarded-proto"
CLIENT_CERT = "x-client-cert"
CLIENT_CERT_HASH = "x-client-cert-hash"
CLIENT_CERT_VERIFIED = "x-client-cert-chain-verified"
_VERIFIED = {"success", "true"}
#: Longest Authorization header read: "Basic " and base64 of a 48-character id, ":" and a 40-character password,
#: with room to spare.
_MAX_AUTHORIZATION = 512
_MAX_CERT_HEADER = 16384


@dataclass(frozen=True)
class Refusal:
    """The upgrade is refused with this HTTP status; ``reason`` is logged (never a credential)."""

    status: int
    reason: str


def _basic_credentials(headers: Mapping[str, str]) -> tuple[str, str] | None:
    value = headers.get("authorization", "")
    if not value or len(value) > _MAX_AUTHORIZATION:
        return None
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


def password_hash(password: str) -> str:
    """What the auth record stores for a password: standard base64 of its SHA-256."""
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest()).decode("ascii")


def _check_basic(cs_id: str, auth: Mapping[str, object], headers: Mapping[str, str]) -> Refusal | None:
    credentials = _basic_credentials(headers)
    if credentials is None:
        return Refusal(401, "no basic credentials")
    username, password = credentials
    stored = auth.get("password_hash")
    # Hash and compare even when something else already failed, so timing says nothing about which.
    matches = hmac.compare_digest(password_hash(password).encode(), str(stored or "").encode())
    if stored is None:
        return Refusal(401, "no password registered")
    if username != cs_id and not auth.get("invalid_username_allowed"):
        return Refusal(401, "username is not the station id")
    if not matches:
        return Refusal(401, "wrong password")
    return None


def _presented_certificate(headers: Mapping[str, str]) -> tuple[str, x509.Certificate | None] | None:
    """The proxy's client certificate: its hash and, when the proxy sent the PEM itself, the certificate."""
    pem = headers.get(CLIENT_CERT)
    if pem and len(pem) <= _MAX_CERT_HEADER:
        try:
            certificate = x509.load_pem_x509_certificate(unquote(pem).encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return None
        return client_certificate_hash(certificate), certificate
    hash_value = headers.get(CLIENT_CERT_HASH, "").strip()
    if hash_value and len(hash_value) <= 128:
        return hash_value.rstrip("=").replace("+", "-").replace("/", "_"), None
    return None


def _common_names(certificate: x509.Certificate) -> list[str]:
    return [str(attribute.value) for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def _check_certificate(cs_id: str, storage: Storage, headers: Mapping[str, str]) -> Refusal | None:
    if headers.get(CLIENT_CERT_VERIFIED, "").strip().lower() not in _VERIFIED:
        return Refusal(401, "the proxy did not verify a client certificate")
    presented = _presented_certificate(headers)
    if presented is None:
        return Refusal(401, "no client certificate")
    certificate_hash, certificate = presented
    stored = storage.certificates.find(certificate_hash)
    if stored is None:
        return Refusal(401, "client certificate not registered")
    if certificate is None:
        try:
            certificate = x509.load_pem_x509_certificate(
                stored["pem"].replace("\\r\\n", "\n").replace("\\n", "\n").encode("ascii")
            )
        except (ValueError, UnicodeEncodeError):
            return Refusal(401, "registered client certificate unreadable")
    if _common_names(certificate) != [cs_id]:
        return Refusal(401, "client certificate CN is not the station id")
    return None


def authenticate(
    storage: Storage, cs_id: str, headers: Mapping[str, str], *, secure_transport: bool, trust_proxy: bool
) -> Refusal | None:
    """None if the station may connect, else why not (404 unknown station, 401 otherwise). Calls the store."""
    auth = storage.charge_stations.find_auth(cs_id)
    if auth is None:
        return Refusal(404, "unknown charge station")
    forwarded = headers.get(FORWARDED_PROTO, "").split(",")[0].strip().lower() if trust_proxy else ""
    secure = secure_transport or forwarded in ("https", "wss")
    profile = auth["security_profile"]
    if profile >= 1 and not secure:
        return Refusal(401, f"security profile {profile} needs TLS")
    if profile == 2:
        if not trust_proxy:
            return Refusal(401, "client certificates are read only from a trusted proxy")
        return _check_certificate(cs_id, storage, headers)
    return _check_basic(cs_id, auth, headers)
