"""Tests for maeve_api.domain.certificates: PEM parsing and the certificate hashes."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import ssl
from collections.abc import Callable

import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from maeve_api.domain.certificates import (
    client_certificate_hash,
    install_certificate_id,
    load_pem_certificate,
    normalize_certificate_hash,
)
from maeve_api.domain.errors import InvalidInput
from tests.factories import make_certificate_pem, make_private_key_pem, make_public_key_pem

NOT_A_HASH = (
    "not a SHA-256 hash: expected 43 base64url characters (44 with '=' padding; '+' and '/' accepted) or 64 hex digits"
)
NOT_CANONICAL = (
    "not a canonical base64 encoding of 32 bytes: the 43rd character must be one of A E I M Q U Y c g k o s w 0 4 8"
)


def der_of(pem: str) -> bytes:
    """The DER of a PEM certificate, decoded by the standard library rather than the code under test."""
    return ssl.PEM_cert_to_DER_cert(pem)


def refusal(text: str, field: str = "certificate") -> tuple[str, str]:
    with pytest.raises(InvalidInput) as caught:
        load_pem_certificate(text, field)
    return caught.value.field, caught.value.reason


# -- load_pem_certificate: accepted forms -------------------------------------------------------


def test_plain_pem_loads() -> None:
    """A PEM certificate with real newlines loads as that certificate."""
    pem = make_certificate_pem("cs001")
    certificate = load_pem_certificate(pem, "certificate")
    assert isinstance(certificate, x509.Certificate)
    assert certificate.subject.rfc4514_string() == "CN=cs001"


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda pem: pem.replace("\n", "\r\n"), id="CRLF"),
        pytest.param(lambda pem: pem.rstrip("\n"), id="no final newline"),
        pytest.param(lambda pem: "subject=CN = cs001\nissuer=CN = cs001\n" + pem, id="openssl text before"),
        pytest.param(lambda pem: "junk" + pem, id="junk on the BEGIN line"),
        pytest.param(lambda pem: pem.replace("\n", "\\n"), id="literal backslash-n"),
        pytest.param(lambda pem: pem.replace("\n", "\\r\\n"), id="literal backslash-r-backslash-n"),
        pytest.param(lambda pem: pem.rstrip("\n").replace("\n", "\\n"), id="literal backslash-n, no final"),
        pytest.param(lambda pem: pem + make_certificate_pem("ca"), id="chain after"),
        pytest.param(lambda pem: pem + make_private_key_pem(), id="key after"),
        pytest.param(lambda pem: pem + "trailing text\n", id="text after"),
        pytest.param(lambda pem: pem.replace("\n", "\n  ").rstrip(" "), id="indented body"),
    ],
)
def test_pem_variants_load_the_same_certificate(variant: Callable[[str], str]) -> None:
    """Line-end, leading-text, literal backslash-n and trailing-chain variants give the same certificate."""
    pem = make_certificate_pem("cs001")
    assert load_pem_certificate(variant(pem), "certificate") == load_pem_certificate(pem, "certificate")


def test_only_the_first_block_counts() -> None:
    """With a chain, the first certificate is the one returned and hashed."""
    leaf, ca = make_certificate_pem("leaf"), make_certificate_pem("ca")
    certificate = load_pem_certificate(leaf + ca, "certificate")
    assert install_certificate_id(certificate) == hashlib.sha256(der_of(leaf)).hexdigest()


def test_literal_backslash_n_is_left_alone_when_real_newlines_exist() -> None:
    """A PEM with real newlines is not rewritten, so a literal backslash-n in it is not a newline."""
    pem = make_certificate_pem("cs001")
    lines = pem.split("\n")
    mixed = "\n".join([lines[0], "\\n".join(lines[1:3]), *lines[3:]])
    assert refusal(mixed) == ("certificate", "the CERTIFICATE PEM block is not valid base64")


# -- load_pem_certificate: refusals ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("garbage", id="garbage"),
        pytest.param("-----BEGIN CERTIFICATE", id="BEGIN line not closed"),
        pytest.param("-----BEGIN -----\nAAAA\n-----END -----\n", id="empty label"),
        pytest.param("MIIBkTCB+wIJAK", id="bare base64"),
        pytest.param("-----BEGIN CERTIFICATE\n-----\n", id="label broken over lines"),
    ],
)
def test_text_without_a_pem_block_is_refused(text: str) -> None:
    """Text with no PEM BEGIN line is refused with 'no PEM block found'."""
    assert refusal(text, "certificates[0].certificate") == (
        "certificates[0].certificate",
        "no PEM block found: expected -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----",
    )


@pytest.mark.parametrize(
    ("text", "label"),
    [
        pytest.param(make_public_key_pem(), "PUBLIC KEY", id="public key"),
        pytest.param(make_private_key_pem(), "PRIVATE KEY", id="private key"),
        pytest.param(make_public_key_pem() + make_certificate_pem(), "PUBLIC KEY", id="key before certificate"),
        pytest.param(
            "-----BEGIN RSA PUBLIC KEY-----\nMAoCAwEAAQIDAQAB\n-----END RSA PUBLIC KEY-----\n",
            "RSA PUBLIC KEY",
            id="RSA public key",
        ),
    ],
)
def test_a_first_block_that_is_not_a_certificate_is_refused(text: str, label: str) -> None:
    """A first PEM block of another type is refused without repeating its label."""
    assert refusal(text) == ("certificate", "must be a CERTIFICATE PEM block, not another kind of PEM block")


def test_a_block_without_end_line_is_refused() -> None:
    """A certificate block cut off before its END line is refused."""
    truncated = make_certificate_pem().split("-----END")[0]
    assert refusal(truncated) == ("certificate", "the CERTIFICATE PEM block has no -----END CERTIFICATE----- line")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param("not base64!", "the CERTIFICATE PEM block is not valid base64", id="bad characters"),
        pytest.param("QUJDRA", "the CERTIFICATE PEM block is not valid base64", id="missing padding"),
        pytest.param("Proc-Type: 4,ENCRYPTED\n\nQUJD", "the CERTIFICATE PEM block is not valid base64", id="headers"),
        pytest.param("QUJD", "not a valid X.509 certificate", id="valid base64, not DER"),
        pytest.param("", "not a valid X.509 certificate", id="empty body"),
    ],
)
def test_a_certificate_block_with_a_bad_body_is_refused(body: str, reason: str) -> None:
    """A CERTIFICATE block whose body is not base64, or not DER of a certificate, is refused saying which."""
    text = f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
    assert refusal(text) == ("certificate", reason)


def test_a_truncated_certificate_is_refused() -> None:
    """A certificate whose DER is cut short is refused as not X.509."""
    der = der_of(make_certificate_pem())[:-10]
    text = f"-----BEGIN CERTIFICATE-----\n{base64.b64encode(der).decode()}\n-----END CERTIFICATE-----\n"
    assert refusal(text) == ("certificate", "not a valid X.509 certificate")


def test_an_unknown_certificate_version_is_refused() -> None:
    """A certificate whose version field is not v1 or v3 is refused as not X.509 (cryptography's InvalidVersion)."""
    der = der_of(make_certificate_pem())
    version = bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2, i.e. v3
    assert der.count(version) == 1
    bad = der.replace(version, bytes.fromhex("a003020105"))
    text = f"-----BEGIN CERTIFICATE-----\n{base64.b64encode(bad).decode()}\n-----END CERTIFICATE-----\n"
    assert refusal(text) == ("certificate", "not a valid X.509 certificate")


# -- the two hashes --------------------------------------------------------------------------------


def test_client_certificate_hash_is_unpadded_base64url_sha256_of_der() -> None:
    """The TLS-offload key is the 43-character unpadded base64url SHA-256 of the certificate's DER."""
    pem = make_certificate_pem("cs001")
    expected = base64.urlsafe_b64encode(hashlib.sha256(der_of(pem)).digest()).decode().rstrip("=")
    key = client_certificate_hash(load_pem_certificate(pem, "certificate"))
    assert key == expected
    assert len(key) == 43


def test_install_certificate_id_is_lowercase_hex_sha256_of_der() -> None:
    """The install id is the 64-character lowercase hex SHA-256 of the certificate's DER."""
    pem = make_certificate_pem("cs001")
    certificate_id = install_certificate_id(load_pem_certificate(pem, "certificate"))
    assert certificate_id == hashlib.sha256(der_of(pem)).hexdigest()
    assert certificate_id == certificate_id.lower()
    assert len(certificate_id) == 64


def test_the_two_hashes_name_the_same_digest() -> None:
    """Both keys encode one SHA-256 digest, so the hex id normalises to the client hash."""
    certificate = load_pem_certificate(make_certificate_pem("cs001"), "certificate")
    assert normalize_certificate_hash(install_certificate_id(certificate)) == client_certificate_hash(certificate)


def test_different_certificates_have_different_hashes() -> None:
    """Two certificates differing only in serial number get different keys."""
    one = load_pem_certificate(make_certificate_pem("cs001", serial_number=1), "certificate")
    two = load_pem_certificate(make_certificate_pem("cs001", serial_number=2), "certificate")
    assert client_certificate_hash(one) != client_certificate_hash(two)


# -- normalize_certificate_hash --------------------------------------------------------------------


def encodings(digest: bytes) -> list[str]:
    """Every accepted spelling of a digest: padded/unpadded x standard/url-safe, and hex in both cases."""
    standard = base64.b64encode(digest).decode()
    urlsafe = base64.urlsafe_b64encode(digest).decode()
    return [standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("="), digest.hex(), digest.hex().upper()]


def test_known_digest_normalises_in_every_spelling() -> None:
    """A digest with '+' and '/' in its standard base64 maps from every spelling to the url-safe key."""
    digest = bytes.fromhex("fbff" + "00" * 29 + "fc")
    assert base64.b64encode(digest).decode() == "+/8AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAPw="
    for spelling in encodings(digest):
        assert normalize_certificate_hash(spelling) == "-_8AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAPw"


@given(st.binary(min_size=32, max_size=32))
def test_every_spelling_of_a_digest_gives_one_key(digest: bytes) -> None:
    """Padded or unpadded, standard or url-safe base64, and hex of one digest all give the same key."""
    key = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert {normalize_certificate_hash(spelling) for spelling in encodings(digest)} == {key}


@given(st.binary(min_size=32, max_size=32))
def test_normalisation_is_idempotent(digest: bytes) -> None:
    """A canonical key normalises to itself."""
    key = normalize_certificate_hash(digest.hex())
    assert normalize_certificate_hash(key) == key


@given(st.binary(max_size=64).filter(lambda b: len(b) != 32))
def test_encodings_of_other_lengths_are_refused(digest: bytes) -> None:
    """Base64 or hex of anything but 32 bytes is refused as not a SHA-256 hash."""
    for spelling in encodings(digest):
        if re.fullmatch("[0-9A-Fa-f]{64}", spelling):
            continue  # base64 of 48 bytes can be 64 hex digits, which is read as hex of 32 bytes
        with pytest.raises(InvalidInput) as caught:
            normalize_certificate_hash(spelling)
        assert (caught.value.field, caught.value.reason) == ("certificateHash", NOT_A_HASH)


@given(st.binary(min_size=32, max_size=32), st.integers(min_value=1, max_value=3))
def test_non_canonical_last_character_is_refused(digest: bytes, low_bits: int) -> None:
    """Setting the unused low bits of the 43rd character gives a string that is refused, not aliased."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    key = normalize_certificate_hash(digest.hex())
    alias = key[:42] + alphabet[alphabet.index(key[42]) | low_bits]
    for spelling in (alias, alias + "=", alias.replace("-", "+").replace("_", "/")):
        with pytest.raises(InvalidInput) as caught:
            normalize_certificate_hash(spelling)
        assert (caught.value.field, caught.value.reason) == ("certificateHash", NOT_CANONICAL)


def test_the_canonical_last_characters_are_those_named_in_the_message() -> None:
    """The message lists exactly the characters a 32-byte encoding can end with."""
    last = {base64.urlsafe_b64encode(bytes(31) + bytes([b])).decode()[42] for b in range(256)}
    assert last == set("AEIMQUYcgkosw048")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("A" * 42, id="42 characters"),
        pytest.param("A" * 44, id="44 characters without padding"),
        pytest.param("A" * 42 + "==", id="double padding"),
        pytest.param("A" * 43 + "==", id="padding too long"),
        pytest.param("=" + "A" * 43, id="leading padding"),
        pytest.param("A" * 20 + "=" + "A" * 22, id="padding inside"),
        pytest.param("A" * 42 + ".", id="character outside both alphabets"),
        pytest.param("A" * 42 + " ", id="trailing space"),
        pytest.param("A" * 43 + "\n", id="trailing newline"),
        pytest.param("0" * 63, id="63 hex digits"),
        pytest.param("0" * 65, id="65 hex digits"),
        pytest.param("g" * 64, id="64 non-hex letters"),
        pytest.param("0" * 62 + "\u0660\u0660", id="non-ASCII digits"),
    ],
)
def test_malformed_hashes_are_refused(value: str) -> None:
    """Strings that are not 43/44-character base64 or 64 hex digits are refused as not a SHA-256 hash."""
    with pytest.raises(InvalidInput) as caught:
        normalize_certificate_hash(value)
    assert (caught.value.field, caught.value.reason) == ("certificateHash", NOT_A_HASH)


@given(st.text(max_size=300))
def test_any_text_is_a_certificate_or_invalid_input(text: str) -> None:
    """Arbitrary text never makes PEM parsing raise anything but InvalidInput."""
    with contextlib.suppress(InvalidInput):
        load_pem_certificate(text, "certificate")


@given(st.binary(max_size=400), st.sampled_from(["\n", "\r\n", "\\n"]))
def test_pem_armour_around_any_bytes_is_a_certificate_or_invalid_input(der: bytes, newline: str) -> None:
    """A CERTIFICATE block holding arbitrary bytes is refused with InvalidInput unless it is a certificate."""
    body = base64.b64encode(der).decode()
    text = newline.join(["-----BEGIN CERTIFICATE-----", *(body[i : i + 64] for i in range(0, len(body), 64))])
    with contextlib.suppress(InvalidInput):
        load_pem_certificate(text + newline + "-----END CERTIFICATE-----" + newline, "certificate")
