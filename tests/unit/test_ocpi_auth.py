"""Reading the credentials token from an OCPI Authorization header, in either encoding."""

from __future__ import annotations

import pytest

from maeve_api.ocpi.auth import candidates


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Token ZXhhbXBsZS10b2tlbg==", ["example-token", "ZXhhbXBsZS10b2tlbg=="]),
        ("token ZXhhbXBsZS10b2tlbg==", ["example-token", "ZXhhbXBsZS10b2tlbg=="]),
        ("Token example-token", ["example-token"]),
        ("Token abcd", ["abcd"]),  # decodes to bytes that are no token: taken as sent
        ("Bearer example-token", []),
        ("Token", []),
        ("example-token", []),
    ],
)
def test_candidates_try_base64_then_raw(header, expected):
    """A printable base64 decoding comes first, then the value as sent; other schemes give nothing."""
    assert candidates(header) == expected
