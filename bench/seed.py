"""Fill a store through its repositories: charge stations, client certificates and tokens, with stable ids."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from maeve_api.domain.emaid import normalize_emaid
from maeve_api.storage import Storage
from maeve_api.storage.sqlite import SqliteStorage

#: SQLite writes are grouped into transactions of this many puts (each put is still one repository call).
SQLITE_BATCH = 5_000
#: Real certificates are slow to make; these few PEMs are stored under every certificate hash.
DISTINCT_PEMS = 4
LAST_UPDATED = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


def station_id(number: int) -> str:
    return f"cs{number:07d}"


def token_uid(number: int) -> str:
    return f"{number:08X}"


def certificate_hash(number: int) -> str:
    """A distinct, canonical client-certificate key (unpadded base64url SHA-256), as the API stores them."""
    digest = hashlib.sha256(f"bench-certificate-{number}".encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def password_hash(number: int) -> str:
    """base64(SHA-256(password)), the form the API stores."""
    return base64.b64encode(hashlib.sha256(f"password-{number}".encode()).digest()).decode("ascii")


@dataclass(frozen=True)
class Dataset:
    """How many records of each kind a store holds."""

    stations: int
    certificates: int = 0
    tokens: int = 0

    @property
    def records(self) -> int:
        return self.stations + self.certificates + self.tokens


@dataclass(frozen=True)
class SeedTiming:
    """Seconds spent seeding each kind of record."""

    dataset: Dataset
    seconds: dict[str, float]

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def rate(self, kind: str) -> float:
        count = getattr(self.dataset, kind)
        return count / self.seconds[kind] if self.seconds.get(kind) else 0.0


def make_certificate_pems(count: int = DISTINCT_PEMS) -> list[str]:
    """A few self-signed EC certificates as PEM text."""
    pems = []
    for number in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bench-client-{number}")])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(number + 1)
            .not_valid_before(datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC))
            .not_valid_after(datetime.datetime(2044, 1, 1, tzinfo=datetime.UTC))
            .sign(key, hashes.SHA256())
        )
        pems.append(certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"))
    return pems


def token(number: int) -> dict[str, object]:
    """The stored token document for ``token_uid(number)``."""
    return {
        "uid": token_uid(number),
        "country_code": "GB",
        "party_id": "TWK",
        "type": "RFID",
        "contract_id": normalize_emaid(f"GBTWK{number:09d}"),
        "issuer": "Benchmark",
        "valid": True,
        "cache_mode": "ALWAYS",
        "last_updated": LAST_UPDATED,
    }


#: The last_updated of location 0; location n was updated n seconds later.
LOCATIONS_FROM = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def location(number: int, evses: int = 1) -> dict[str, object]:
    """A stored OCPI location, ``evses`` EVSEs of one connector each, ordered by ``number`` in time and id."""
    stamp = LOCATIONS_FROM + datetime.timedelta(seconds=number)
    connector = {
        "id": "1",
        "standard": "IEC_62196_T2",
        "format": "SOCKET",
        "power_type": "AC_3_PHASE",
        "max_voltage": 400,
        "max_amperage": 32,
        "last_updated": stamp,
    }
    return {
        "id": f"loc{number:07d}",
        "country_code": "GB",
        "party_id": "TWK",
        "name": f"Location {number}",
        "address": "1 Main Street",
        "city": "London",
        "country": "GBR",
        "coordinates": {"latitude": "51.53146", "longitude": "-0.12360"},
        "evses": [
            {"uid": f"evse{number}-{n}", "status": "UNKNOWN", "connectors": [connector], "last_updated": stamp}
            for n in range(evses)
        ],
        "last_updated": stamp,
    }


@contextlib.contextmanager
def _batch(storage: Storage) -> Iterator[None]:
    """One SQLite transaction around a batch of puts (a commit per put would dominate); nothing for MongoDB."""
    if isinstance(storage, SqliteStorage):
        with storage.transaction():
            yield
    else:
        yield


def _put_each(storage: Storage, count: int, put: Callable[[int], None]) -> float:
    """Call ``put(number)`` for every number below ``count``; returns the seconds it took."""
    started = time.perf_counter()
    for start in range(0, count, SQLITE_BATCH):
        with _batch(storage):
            for number in range(start, min(start + SQLITE_BATCH, count)):
                put(number)
    return time.perf_counter() - started


def seed(storage: Storage, dataset: Dataset, pems: list[str]) -> SeedTiming:
    """Store ``dataset`` through the repositories, one put per record."""
    stations = storage.charge_stations
    seconds = {
        "stations": _put_each(
            storage,
            dataset.stations,
            lambda n: stations.put_auth(
                station_id(n),
                {"security_profile": 2, "password_hash": password_hash(n), "invalid_username_allowed": False},
            ),
        ),
        "certificates": _put_each(
            storage, dataset.certificates, lambda n: storage.certificates.put(certificate_hash(n), pems[n % len(pems)])
        ),
        "tokens": _put_each(storage, dataset.tokens, lambda n: storage.tokens.put(token(n))),
    }
    return SeedTiming(dataset, seconds)


@dataclass(frozen=True)
class IdFiles:
    """Files of ids, one a line, that the wrk scripts pick from."""

    stations: Path
    certificates: Path
    tokens: Path


def write_id_files(directory: Path, dataset: Dataset) -> IdFiles:
    """Write the ids of ``dataset`` for the load generator."""
    directory.mkdir(parents=True, exist_ok=True)
    files = IdFiles(directory / "stations.txt", directory / "certificates.txt", directory / "tokens.txt")
    files.stations.write_text("".join(f"{station_id(n)}\n" for n in range(dataset.stations)))
    files.certificates.write_text("".join(f"{certificate_hash(n)}\n" for n in range(dataset.certificates)))
    files.tokens.write_text("".join(f"{token_uid(n)}\n" for n in range(dataset.tokens)))
    return files
