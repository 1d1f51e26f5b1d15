"""Client certificates on every engine: put, replace, lookup and removal by hash."""

from __future__ import annotations

import pytest

from maeve_api.storage import NotFound
from tests.factories import make_certificate_pem
from tests.storage.conftest import assert_not_found

# Hashes are base64 of a SHA-256 digest: '+', '/' and '=' must survive as key characters.
HASH = "q1Wq3+rRaxo/AbC9Lz5s0xS1Ow1lMKaH5Hxzl0/Kz0E="
OTHER_HASH = "3n9aCOqkQ0dCL0rMSqM3sKJL0vNf5hMC4jGfCjuMrVU="


def test_put_then_find_returns_the_certificate(storage):
    """A stored certificate comes back with its hash and the PEM text unchanged."""
    pem = make_certificate_pem("cs001")
    storage.certificates.put(HASH, pem)
    assert storage.certificates.find(HASH) == {"hash": HASH, "pem": pem}


def test_put_replaces_the_certificate_under_the_hash(storage):
    """A second put under the same hash replaces the PEM."""
    storage.certificates.put(HASH, make_certificate_pem("cs001"))
    storage.certificates.put(HASH, make_certificate_pem("cs002"))
    assert storage.certificates.find(HASH) == {"hash": HASH, "pem": make_certificate_pem("cs002")}


def test_certificates_under_other_hashes_stay_apart(storage):
    """Each hash keeps its own certificate."""
    storage.certificates.put(HASH, "pem 1")
    storage.certificates.put(OTHER_HASH, "pem 2")
    assert storage.certificates.find(HASH) == {"hash": HASH, "pem": "pem 1"}
    assert storage.certificates.find(OTHER_HASH) == {"hash": OTHER_HASH, "pem": "pem 2"}


def test_find_of_an_unknown_hash_is_none(storage):
    """find returns None for a hash that was never stored, even one differing only in case."""
    storage.certificates.put(HASH, "pem")
    assert storage.certificates.find(HASH.lower()) is None


def test_get_returns_the_certificate(storage):
    """get returns the same document as find when the certificate exists."""
    storage.certificates.put(HASH, "pem")
    assert storage.certificates.get(HASH) == {"hash": HASH, "pem": "pem"}


def test_get_of_an_unknown_hash_raises_not_found(storage):
    """get raises NotFound("certificate", hash) for a hash that was never stored."""
    with pytest.raises(NotFound) as raised:
        storage.certificates.get(HASH)
    assert_not_found(raised.value, "certificate", HASH)


def test_remove_deletes_only_that_certificate(storage):
    """After remove the certificate is gone and the others are still there."""
    storage.certificates.put(HASH, "pem 1")
    storage.certificates.put(OTHER_HASH, "pem 2")
    storage.certificates.remove(HASH)
    assert storage.certificates.find(HASH) is None
    assert storage.certificates.find(OTHER_HASH) == {"hash": OTHER_HASH, "pem": "pem 2"}


def test_remove_of_an_unknown_hash_raises_not_found(storage):
    """remove raises NotFound("certificate", hash) when nothing is stored under the hash, also a second time."""
    storage.certificates.put(HASH, "pem")
    storage.certificates.remove(HASH)
    for certificate_hash in (HASH, OTHER_HASH):
        with pytest.raises(NotFound) as raised:
            storage.certificates.remove(certificate_hash)
        assert_not_found(raised.value, "certificate", certificate_hash)


def test_put_after_remove_stores_the_certificate_again(storage):
    """A removed hash can be stored again."""
    storage.certificates.put(HASH, "pem 1")
    storage.certificates.remove(HASH)
    storage.certificates.put(HASH, "pem 2")
    assert storage.certificates.get(HASH) == {"hash": HASH, "pem": "pem 2"}
