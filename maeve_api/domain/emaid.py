"""eMAID (e-mobility account id) normalisation with the eMI3/OCHP check digit."""

from __future__ import annotations

import re

from maeve_api.domain.errors import InvalidInput

FIELD = "contractId"

# Anchored, unlike the reference's unanchored search (maeve-behaviour.md §0.7): leading or
# trailing garbage is refused instead of skipped. The party id may hold digits (eMI3 allows it).
_EMAID = re.compile(r"([A-Za-z]{2})-?([A-Za-z0-9]{3})-?([A-Za-z0-9]{9})(?:-?([A-Za-z0-9]))?")

NOT_AN_EMAID = (
    "not an eMAID: expected CC-PPP-IIIIIIIII[-D] (2 letters, 3 and 9 letters or digits, optional check digit)"
)

# The check digit of the OCHP paper "E-Mobility IDs EVCOID Check-Digit Calculation", with the
# tables of the reference's manager/ocpp/emaid.go. Character n of 0-9A-Z is written in the mixed
# radix 2, 2, 3, 3 as (q1, q2, r1, r2); position i weighs (q1, q2) by the 2x2 matrix _P1[i] modulo 2
# and (r1, r2) by _P2[i] modulo 3, each flattened row by row. The rows repeat every 3 and 8 positions.
_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOOKUP = {char: (n // 18, n // 9 % 2, n // 3 % 3, n % 3) for n, char in enumerate(_DIGITS)}
_P1 = (((0, 1, 1, 1), (1, 1, 1, 0), (1, 0, 0, 1)) * 5)[:14]
_P2 = (
    ((0, 1, 1, 2), (1, 2, 2, 2), (2, 2, 2, 0), (2, 0, 0, 2), (0, 2, 2, 1), (2, 1, 1, 1), (1, 1, 1, 0), (1, 0, 0, 1)) * 2
)[:14]
_REVERSE = "0I9R3LCU6OFX----1JAS4MDV7PGY----2KBT5NEW8QHZ"


def check_digit(body: str) -> str:
    """The eMI3 check digit of a 14-character upper-case eMAID body; raises ValueError for any other body."""
    if len(body) != 14 or not set(body) <= _LOOKUP.keys():
        raise ValueError(f"not a 14-character upper-case eMAID body: {body!r}")
    c1 = c2 = c3 = c4 = 0
    for char, p1, p2 in zip(body, _P1, _P2, strict=True):
        q1, q2, r1, r2 = _LOOKUP[char]
        c1 += q1 * p1[0] + q2 * p1[2]
        c2 += q1 * p1[1] + q2 * p1[3]
        c3 += r1 * p2[0] + r2 * p2[2]
        c4 += r1 * p2[1] + r2 * p2[3]
    q1, q2 = c1 % 2, c2 % 2
    r1 = -c4 % 3
    r2 = -(c3 % 3 + r1) % 3
    return _REVERSE[q1 + q2 * 2 + r1 * 4 + r2 * 16]


def normalize_emaid(value: str) -> str:
    """The canonical eMAID: upper case, no separators, check digit appended or verified.

    Raises InvalidInput("contractId", ...) when the whole value is not an eMAID or its check digit
    is wrong.
    """
    match = _EMAID.fullmatch(value)
    if match is None:
        raise InvalidInput(FIELD, NOT_AN_EMAID)
    country, party, instance, given = match.groups()
    body = f"{country}{party}{instance}".upper()
    expected = check_digit(body)
    if given is not None and given.upper() != expected:
        raise InvalidInput(FIELD, "the check digit (15th character) is wrong")
    return body + expected
