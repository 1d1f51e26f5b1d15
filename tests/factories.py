"""Plain factories for test data shared by unit and API tests: PEM certificates and keys."""

from __future__ import annotations

import datetime
import functools

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_NOT_BEFORE = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
_NOT_AFTER = datetime.datetime(2044, 1, 1, tzinfo=datetime.UTC)


@functools.cache
def _key(seed: str) -> ec.EllipticCurvePrivateKey:
    """One P-256 key per seed, made once per test session (key generation is the slow part)."""
    return ec.generate_private_key(ec.SECP256R1())


@functools.cache
def make_certificate_pem(common_name: str = "cs001", *, serial_number: int = 1) -> str:
    """A self-signed EC certificate as PEM text with real newlines.

    The same arguments give the same PEM within a test session, so a test can upload it and look
    it up again; give another ``common_name`` or ``serial_number`` for a different certificate.
    """
    key = _key(common_name)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial_number)
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def make_public_key_pem(seed: str = "cs001") -> str:
    """A PEM ``PUBLIC KEY`` block: PEM that is not a certificate."""
    return (
        _key(seed)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def make_private_key_pem(seed: str = "cs001") -> str:
    """A PEM ``PRIVATE KEY`` block (PKCS#8, unencrypted): PEM that is not a certificate."""
    return (
        _key(seed)
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode("ascii")
    )
