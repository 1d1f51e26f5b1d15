"""Client certificates through the real app: upload, lookup and delete by hash."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.api.conftest import assert_empty, assert_status
from tests.factories import make_certificate_pem


def digest_of(pem: str) -> bytes:
    return hashlib.sha256(x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)).digest()


def test_upload_stores_under_the_unpadded_base64url_hash(client):
    """The 201 names the certificate's URL, whose lookup returns the PEM as uploaded."""
    pem = make_certificate_pem("cs001")
    key = base64.urlsafe_b64encode(digest_of(pem)).decode().rstrip("=")
    response = client.post("/certificate", json={"certificate": pem})
    assert response.status_code == 201
    assert response.content == b""
    assert response.headers["location"] == f"/api/v0/certificate/{key}"
    lookup = client.get(f"/certificate/{key}")
    assert lookup.status_code == 200
    assert lookup.headers["content-type"] == "application/json"
    assert lookup.json() == {"certificate": pem}


def test_lookup_accepts_every_encoding_of_the_hash(client):
    """Padded or unpadded, URL-safe or standard alphabet, and hex all find the certificate."""
    pem = make_certificate_pem("cs-encodings")
    digest = digest_of(pem)
    client.post("/certificate", json={"certificate": pem})
    variants = {
        base64.urlsafe_b64encode(digest).decode(),
        base64.urlsafe_b64encode(digest).decode().rstrip("="),
        base64.b64encode(digest).decode(),
        base64.b64encode(digest).decode().rstrip("="),
        digest.hex(),
    }
    for variant in variants:
        assert client.get(f"/certificate/{quote(variant, safe='')}").json() == {"certificate": pem}, variant


def test_upload_accepts_literal_backslash_n(client):
    """A PEM whose newlines are the two characters \\n is accepted and stored as uploaded."""
    literal = make_certificate_pem("literal").replace("\n", "\\n")
    response = client.post("/certificate", json={"certificate": literal})
    assert response.status_code == 201
    assert client.get(response.headers["location"].removeprefix("/api/v0")).json() == {"certificate": literal}


@pytest.mark.parametrize(
    ("pem", "mentions"),
    [
        ("", "certificate"),
        ("not a certificate", "certificate"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "certificate"),
    ],
)
def test_upload_refuses_what_is_not_a_certificate(client, pem, mentions):
    """Empty strings, garbage and undecodable certificate blocks are 400."""
    assert_status(client.post("/certificate", json={"certificate": pem}), 400, mentions)


def test_upload_refuses_a_public_key(client):
    """A PEM block that is not a CERTIFICATE is 400."""
    from tests.factories import make_public_key_pem

    assert_status(client.post("/certificate", json={"certificate": make_public_key_pem()}), 400, "certificate")


def test_delete_removes_and_a_second_delete_is_404(client):
    """Delete answers 204 once, then the certificate is gone and deleting again is 404."""
    pem = make_certificate_pem("to-delete")
    location = client.post("/certificate", json={"certificate": pem}).headers["location"].removeprefix("/api/v0")
    assert_empty(client.delete(location), 204)
    assert_status(client.get(location), 404, "certificate")
    assert_status(client.delete(location), 404, "certificate")


@pytest.mark.parametrize("bad", ["abc", "A" * 65, "!" * 43, "A" * 42 + "B"])
def test_malformed_hashes_are_400(client, bad):
    """A path that cannot be a SHA-256 encoding is a 400 naming certificateHash."""
    assert_status(client.get(f"/certificate/{bad}"), 400, "certificateHash")
