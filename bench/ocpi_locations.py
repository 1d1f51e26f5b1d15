"""Time one page of the OCPI locations module over many stored locations: ``python -m bench.ocpi_locations``.

Seeds ``BENCH_LOCATIONS`` (20,000) locations into a fresh SQLite file, then times ``location_page`` (what
``GET /ocpi/2.2.1/locations`` runs) for the first page, a page in the middle, and a middle page of a
``date_from`` window, each the median of ``BENCH_ROUNDS`` (5) rounds. Prints one line per case.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from maeve_api.ocpi.locations import location_page
from maeve_api.settings import Settings
from maeve_api.storage.sqlite import SqliteStorage

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _location(index: int) -> dict[str, object]:
    stamp = T0 + timedelta(seconds=index)
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
        "id": f"loc{index:06}",
        "country_code": "GB",
        "party_id": "TWK",
        "name": f"Location {index}",
        "address": "1 Main Street",
        "city": "London",
        "country": "GBR",
        "coordinates": {"latitude": "51.53146", "longitude": "-0.12360"},
        "evses": [
            {"uid": f"evse{index}-{n}", "status": "UNKNOWN", "connectors": [connector], "last_updated": stamp}
            for n in range(2)
        ],
        "last_updated": stamp,
    }


def main() -> None:
    count = int(os.environ.get("BENCH_LOCATIONS", "20000"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    settings = Settings()
    with tempfile.TemporaryDirectory(prefix="maeve-bench-locations-") as directory:
        storage = SqliteStorage(Path(directory) / "locations.db")
        for index in range(count):
            storage.locations.put(_location(index))
        cases = {
            "first page": (0, None),
            "middle page": (count // 2, None),
            "middle page of date_from window": (count // 4, T0 + timedelta(seconds=count // 2)),
        }
        for name, (offset, date_from) in cases.items():
            timings = []
            for _ in range(rounds):
                started = time.perf_counter()
                page, total = location_page(storage, settings, offset, 100, date_from=date_from)
                timings.append(time.perf_counter() - started)
            assert len(page) == 100, (name, len(page), total)
            print(f"{name:34} {count} locations, total {total:6}: median {statistics.median(timings) * 1000:9.1f} ms")
        storage.close()


if __name__ == "__main__":
    main()
