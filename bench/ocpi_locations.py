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
from datetime import timedelta
from pathlib import Path

from bench.seed import LOCATIONS_FROM, location
from maeve_api.ocpi.locations import location_page
from maeve_api.settings import Settings
from maeve_api.storage.sqlite import SqliteStorage

T0 = LOCATIONS_FROM


def main() -> None:
    count = int(os.environ.get("BENCH_LOCATIONS", "20000"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    settings = Settings()
    with tempfile.TemporaryDirectory(prefix="maeve-bench-locations-") as directory:
        storage = SqliteStorage(Path(directory) / "locations.db")
        for index in range(count):
            storage.locations.put(location(index, evses=2))
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
