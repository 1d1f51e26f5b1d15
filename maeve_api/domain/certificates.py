"""PEM certificate parsing and the two SHA-256 keys that identify a certificate."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from maeve_api.domain.errors import InvalidInput

HASH_FIELD = "certificateHash"

# A BEGIN line anywhere (text before it is skipped, as Go's pem.Decode does); labels are short.
_PEM_BEGIN = re.compile(r"-----BEGIN ([^\r\n]{1,64}?)-----")
_HEX_SHA256 = re.compile(r"[0-9A-Fa-f]{64}")
_BASE64URL_SHA256 = re.compile(r"[A-Za-z0-9_-]{43}")

NO_PEM_BLOCK = "no PEM block found: expected -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----"
NO_PEM_END = "the CERTIFICATE PEM block has no -----END CERTIFICATE----- line"
NOT_BASE64 = "the CERTIFICATE PEM block is not valid base64"
NOT_X509 = "not a valid X.509 certificate"
NOT_A_HASH = (
    "not a SHA-256 hash: expected 43 base64url characters (44 with '=' padding; '+' and '/' accepted) or 64 hex digits"
)
NOT_CANONICAL = (
    "not a canonical base64 encoding of 32 bytes: the 43rd character must be one of A E I M Q U Y c g k o s w 0 4 8"
)


def _certificate_der(text: str, field: str) -> bytes:
    """The DER bytes of the first PEM block in ``text``, which must be a CERTIFICATE."""
    begin = _PEM_BEGIN.search(text)
    if begin is None:
        raise InvalidInput(field, NO_PEM_BLOCK)
    label = begin[1]
    if label != "CERTIFICATE":
        raise InvalidInput(field, "must be a CERTIFICATE PEM block, not another kind of PEM block")
    end = text.find("-----END CERTIFICATE-----", begin.end())
    if end < 0:
        raise InvalidInput(field, NO_PEM_END)
    try:
        return base64.b64decode("".join(text[begin.end() : end].split()), validate=True)
    except binascii.Error:
        raise InvalidInput(field, NOT_BASE64) from None


def load_pem_certificate(text: str, field: str) -> x509.Certificate:
    """The X.509 certificate in the first PEM block of ``text``; later blocks (a chain) are ignored.

    Text before the block (as in ``openssl x509 -text`` output), CRLF line ends and a missing final
    newline are accepted, and so is a one-line PEM whose newlines were sent as literal backslash-n.
    Raises InvalidInput(field, ...) when there is no PEM block, the first block is not a CERTIFICATE,
    or it is not a valid X.509 certificate.
    """
    if "\n" not in text and "\\n" in text:
        # The spec's "newlines replaced by \n" taken literally (maeve-behaviour.md §0.6).
        text = text.replace("\\r\\n", "\n").replace("\\n", "\n")
    der = _certificate_der(text, field)
    try:
        return x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion):
        raise InvalidInput(field, NOT_X509) from None


def _sha256(cert: x509.Certificate) -> bytes:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()


def client_certificate_hash(cert: x509.Certificate) -> str:
    """The key of a client certificate for TLS offload: unpadded base64url SHA-256 of its DER."""
    return base64.urlsafe_b64encode(_sha256(cert)).rstrip(b"=").decode("ascii")


def install_certificate_id(cert: x509.Certificate) -> str:
    """The id of a certificate to install on a charge station: lowercase hex SHA-256 of its DER."""
    return _sha256(cert).hex()


def normalize_certificate_hash(value: str) -> str:
    """The canonical (unpadded base64url) form of a SHA-256 certificate hash.

    Accepts padded or unpadded base64 in the URL-safe or standard alphabet, and 64 hex digits.
    Raises InvalidInput("certificateHash", ...) for anything that does not encode exactly 32 bytes,
    or encodes them non-canonically (so that two different strings never name one certificate).
    """
    if _HEX_SHA256.fullmatch(value):
        return base64.urlsafe_b64encode(bytes.fromhex(value)).rstrip(b"=").decode("ascii")
    candidate = value.replace("+", "-").replace("/", "_")
    if len(candidate) == 44 and candidate.endswith("="):
        candidate = candidate[:-1]
    if not _BASE64URL_SHA256.fullmatch(candidate):
        raise InvalidInput(HASH_FIELD, NOT_A_HASH)
    digest = base64.urlsafe_b64decode(candidate + "=")
    canonical = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    if canonical != candidate:
        raise InvalidInput(HASH_FIELD, NOT_CANONICAL)
    return canonical
