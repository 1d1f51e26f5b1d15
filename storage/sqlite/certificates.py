"""The SQLite repository of certificates."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..base import (
    CertificateRepository,
    Document,
    NotFound,
)

if TYPE_CHECKING:
    from . import SqliteStorage


class SqliteCertificateRepository(CertificateRepository):
    """Client certificates in ``certificates``."""

    def __init__(self, db: SqliteStorage) -> None:
        self._db = db

    def put(self, certificate_hash: str, pem: str) -> None:
        self._db.execute(
            "INSERT INTO certificates (hash, pem) VALUES (?, ?) ON CONFLICT (hash) DO UPDATE SET pem = excluded.pem",
            (certificate_hash, pem),
        )

    def find(self, certificate_hash: str) -> Document | None:
        row = self._db.fetch_one("SELECT hash, pem FROM certificates WHERE hash = ?", (certificate_hash,))
        return None if row is None else {"hash": row[0], "pem": row[1]}

    def remove(self, certificate_hash: str) -> None:
        if self._db.execute("DELETE FROM certificates WHERE hash = ?", (certificate_hash,)) == 0:
            raise NotFound("certificate", certificate_hash)
