"""Helpers shared by the repository conformance tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from maeve_api.storage import NotFound


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "engine_gap(**reasons): a known gap of the named stand-in engines (keyword: the storage_engine, value: the "
        "gap); the test's variant on each of them is a strict xfail saying so",
    )


@pytest.fixture(autouse=True)
def _engine_gaps(request: pytest.FixtureRequest) -> None:
    """Apply ``engine_gap``: a stand-in that lacks what the test needs must fail it, and is reported as its gap.

    Strict, so a stand-in that gains the feature turns the xfail into a failure and the mark is removed.
    """
    callspec = getattr(request.node, "callspec", None)
    engine = callspec.params.get("storage_engine") if callspec is not None else None
    for marker in request.node.iter_markers("engine_gap"):
        if engine in marker.kwargs:
            request.applymarker(pytest.mark.xfail(strict=True, reason=f"{engine}: {marker.kwargs[engine]}"))


#: Keys that sort differently under case-folding, locale collation, Unicode normalisation or UTF-16 order:
#: digits, upper and lower case, precomposed and combining accents, Greek, a full-width letter, an emoji.
CODE_POINT_KEYS = (
    *("b", "B", "a", "A", "0", "10", "9", "Z", "z", "a b", "a-b"),
    *("é", "e\u0301", "e", "E", "Ä", "Ω", "\uff21", "\U0001f600"),
)


def assert_not_found(error: NotFound, kind: str, key: str) -> None:
    """The NotFound names the kind of record and the key that was asked for."""
    assert (type(error), error.kind, error.key) == (NotFound, kind, key)


def assert_utc(value: object) -> None:
    """The value is a timezone-aware UTC datetime with millisecond precision."""
    assert isinstance(value, datetime)
    assert value.utcoffset() == timedelta(0)
    assert value.microsecond % 1000 == 0


def datetimes_in(value: object) -> list[datetime]:
    """Every datetime nested anywhere in dicts and lists."""
    if isinstance(value, datetime):
        return [value]
    if isinstance(value, dict):
        return [found for item in value.values() for found in datetimes_in(item)]
    if isinstance(value, list):
        return [found for item in value for found in datetimes_in(item)]
    return []


#: The last_updated of the token make_token gives: milliseconds, as every engine keeps them.
TOKEN_LAST_UPDATED = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)


def make_token(**overrides: Any) -> dict[str, Any]:
    """A token document as the repositories take and return it, with ``overrides`` applied."""
    token = {
        "uid": "DEADBEEF",
        "country_code": "GB",
        "party_id": "TWK",
        "type": "RFID",
        "contract_id": "GBTWK012345678V",
        "issuer": "Thoughtworks",
        "valid": True,
        "cache_mode": "ALWAYS",
        "last_updated": TOKEN_LAST_UPDATED,
    }
    token.update(overrides)
    return token
