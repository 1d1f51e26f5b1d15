"""The MongoDB repository of certificates."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..base import (
    CertificateRepository,
    Document,
    NotFound,
)

if TYPE_CHECKING:
    from . import MongoStorage


class MongoCertificateRepository(CertificateRepository):
    """Client certificates in ``certificates``, ``_id`` = hash."""

    def __init__(self, db: MongoStorage) -> None:
        self._db = db
        self._certificates = db.collection("certificates")

    def put(self, certificate_hash: str, pem: str) -> None:
        with self._db.operation():
            self._certificates.replace_one(
                {"_id": certificate_hash}, {"_id": certificate_hash, "pem": pem}, upsert=True
            )

    def find(self, certificate_hash: str) -> Document | None:
        with self._db.operation():
            stored = self._certificates.find_one({"_id": certificate_hash})
        return None if stored is None else {"hash": stored["_id"], "pem": stored["pem"]}

    def remove(self, certificate_hash: str) -> None:
        with self._db.operation():
            result = self._certificates.delete_one({"_id": certificate_hash})
        if result.deleted_count == 0:
            raise NotFound("certificate", certificate_hash)
