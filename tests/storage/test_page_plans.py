"""Every list the API and OCPI serve pages through an index on SQLite: its queries walk an index in order and never
sort the table, so a page costs its offset and limit, not the number of records stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from maeve_api.storage import Storage
from maeve_api.storage.sqlite import SqliteStorage

WINDOW = datetime(2026, 1, 1, tzinfo=UTC)

#: What each list's handler asks the store for one page: listChargeStations, listTokens, listParties (the
#: parties, the count before the registrations, the registrations) and OCPI's listLocations (page, window, count).
PAGES: dict[str, Callable[[Storage], Any]] = {
    "charge stations": lambda s: s.ocpp.stations(40, 20),
    "tokens": lambda s: s.tokens.page(40, 20),
    "parties": lambda s: s.parties.page(40, 20),
    "party count": lambda s: s.parties.count(),
    "registrations": lambda s: s.registrations.page(40, 20),
    "locations": lambda s: s.locations.updated_between(40, 20),
    "locations in a window": lambda s: s.locations.updated_between(40, 20, WINDOW, WINDOW),
    "location count": lambda s: s.locations.count(),
    "location count in a window": lambda s: s.locations.count(WINDOW, WINDOW),
}


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[SqliteStorage]:
    storage = SqliteStorage(tmp_path / "plans.db")
    yield storage
    storage.close()


def _plans(storage: SqliteStorage, page: Callable[[Storage], Any]) -> list[list[str]]:
    """The query plan of every statement ``page`` runs, one list of plan lines per statement."""
    ran: list[tuple[str, tuple[Any, ...]]] = []
    fetch_all, fetch_one = storage.fetch_all, storage.fetch_one

    def recording(fetch: Callable[[str, tuple[Any, ...]], Any]) -> Callable[[str, tuple[Any, ...]], Any]:
        def run(sql: str, parameters: tuple[Any, ...]) -> Any:
            ran.append((sql, parameters))
            return fetch(sql, parameters)

        return run

    storage.fetch_all, storage.fetch_one = recording(fetch_all), recording(fetch_one)  # type: ignore[method-assign]
    try:
        page(storage)
    finally:
        storage.fetch_all, storage.fetch_one = fetch_all, fetch_one  # type: ignore[method-assign]
    connection = storage.connection()
    return [[row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", p)] for sql, p in ran]


#: The tables stored WITHOUT ROWID: the table is its primary key's index, so a SCAN of one walks that index.
CLUSTERED = {"tokens", "ocpi_registrations", "charge_stations", "c"}


@pytest.mark.parametrize("name", list(PAGES))
def test_each_page_walks_an_index_and_sorts_nothing(sqlite, name):
    """Every statement of the page reads in an index's order: no sort of the rows, no scan but an index's."""
    plans = _plans(sqlite, PAGES[name])
    assert plans, "the page ran no query"
    for plan in plans:
        assert not any("TEMP B-TREE" in line for line in plan), plan
        for line in plan:
            if line.startswith("SCAN "):
                table = line.split()[1]
                assert "INDEX" in line or table in CLUSTERED, plan
