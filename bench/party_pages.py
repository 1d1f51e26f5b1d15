"""Time one page of listParties over many stored parties: ``python -m bench.party_pages``.

For each count in ``BENCH_PARTY_COUNTS`` (1,000 and 100,000) seeds that many parties into a fresh SQLite
file (written in one transaction, as the engine stores them) and times ``list_parties`` (what
``GET /api/v0/party`` runs) for the first page of 20 and a page in the middle, each the median of
``BENCH_ROUNDS`` (5) rounds. Prints one line per case.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from maeve_api.ocpi.parties import list_parties
from maeve_api.storage.sqlite import SqliteStorage


def _seed(storage: SqliteStorage, count: int) -> None:
    with storage.transaction() as connection:
        for n in range(count):
            key = f"NL*{n:06d}"
            party = {
                "key": key,
                "roles": [{"role": "EMSP", "country_code": "NL", "party_id": f"{n:06d}"}],
                "version": "2.2.1",
                "inbound_token_hash": f"hash-{n}",
                "registered_at": 0,
            }
            connection.execute(
                "INSERT INTO ocpi_parties (key, inbound_token_hash, document) VALUES (?, ?, ?)",
                (key, f"hash-{n}", json.dumps(party)),
            )


def _median_ms(run: object, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _measure(count: int, rounds: int) -> str:
    with tempfile.TemporaryDirectory() as directory:
        storage = SqliteStorage(Path(directory) / "parties.db")
        try:
            _seed(storage, count)
            first = _median_ms(lambda: list_parties(storage, 0, 20), rounds)
            middle = _median_ms(lambda: list_parties(storage, count // 2, 20), rounds)
            everything = _median_ms(lambda: storage.parties.all()[:20], rounds)  # the earlier listing
        finally:
            storage.close()
    return (
        f"sqlite parties={count:>7}: first page {first:.2f} ms, middle page {middle:.2f} ms, "
        f"loading every party {everything:.2f} ms"
    )


def main() -> None:
    counts = [int(c) for c in os.environ.get("BENCH_PARTY_COUNTS", "1000,100000").split(",")]
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    for count in counts:
        print(_measure(count, rounds))


if __name__ == "__main__":
    main()
