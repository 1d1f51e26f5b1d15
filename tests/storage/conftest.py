"""Helpers shared by the repository conformance tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from maeve_api.storage import NotFound

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
