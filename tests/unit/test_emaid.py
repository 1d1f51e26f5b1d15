"""Tests for maeve_api.domain.emaid: anchored eMAID normalisation and the eMI3 check digit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maeve_api.domain.emaid import NOT_AN_EMAID, check_digit, normalize_emaid
from maeve_api.domain.errors import InvalidInput

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALPHANUMERIC = "0123456789" + LETTERS


# The rows of maeve-behaviour.md §0.7 that stay valid under the anchored pattern.
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("GB-TWK-012345678-V", "GBTWK012345678V"),
        ("gbtwk123456789", "GBTWK123456789B"),
        ("GBTWK012345678", "GBTWK012345678V"),
        ("gb-twk-012345678-v", "GBTWK012345678V"),
        ("GBTWK-012345678", "GBTWK012345678V"),
        ("GB-TWK012345678V", "GBTWK012345678V"),
        ("GB1WK012345678", "GB1WK0123456783"),
        ("NL-TNM-000123456", "NLTNM000123456T"),
        ("DE-8AA-CA2B3C4D5-L", "DE8AACA2B3C4D5L"),
        ("GBTWKABCDEFGHI", "GBTWKABCDEFGHIK"),
        # The reference's own emaid_test.go examples.
        ("CSKTH5U8TC90A1S", "CSKTH5U8TC90A1S"),
        ("IHRFRNPCZVPPVEW", "IHRFRNPCZVPPVEW"),
    ],
)
def test_reference_examples_normalise(value: str, expected: str) -> None:
    """Every valid example of the reference gives the reference's canonical eMAID."""
    assert normalize_emaid(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("12GBTWK012345678", id="leading digits"),
        pytest.param("GBTWK012345678VEXTRA", id="suffix"),
        pytest.param("GB-TWK-012345678-", id="trailing separator"),
        pytest.param("GB-TWK-012345678--V", id="double separator before digit"),
        pytest.param("xxGBTWK012345678Vyy", id="garbage both sides"),
        pytest.param("GB-TWK-01234567", id="instance too short"),
        pytest.param("GB--TWK012345678", id="double separator"),
        pytest.param("GB*TWK*012345678*V", id="DIN star separator"),
        pytest.param("", id="empty"),
        pytest.param("G1TWK012345678", id="digit in country"),
        pytest.param("GBTWK012345678\n", id="trailing newline"),
        pytest.param(" GBTWK012345678", id="leading space"),
        pytest.param("GB TWK 012345678", id="space separators"),
        pytest.param("GBTWK01234567_", id="underscore"),
        pytest.param("GBTWK01234567ä", id="non-ASCII letter"),
        pytest.param("-GBTWK012345678", id="leading separator"),
        pytest.param("GBTWK012345678V1", id="16 characters"),
    ],
)
def test_values_that_are_not_emaids_are_refused(value: str) -> None:
    """Anything the anchored pattern does not match as a whole is refused, naming the expected shape."""
    with pytest.raises(InvalidInput) as caught:
        normalize_emaid(value)
    assert caught.value.field == "contractId"
    assert caught.value.reason == (
        "not an eMAID: expected CC-PPP-IIIIIIIII[-D] (2 letters, 3 and 9 letters or digits, optional check digit)"
    )
    assert caught.value.reason == NOT_AN_EMAID


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("GBTWK012345678X", "the check digit (15th character) is wrong"),
        ("GBTWK0123456789", "the check digit (15th character) is wrong"),
        ("gb-twk-012345678-x", "the check digit (15th character) is wrong"),
        ("DE-8AA-CA2B3C4D5-M", "the check digit (15th character) is wrong"),
    ],
)
def test_wrong_check_digit_is_refused(value: str, reason: str) -> None:
    """A 15th character that is not the computed check digit is refused, repeating neither digit."""
    with pytest.raises(InvalidInput) as caught:
        normalize_emaid(value)
    assert (caught.value.field, caught.value.reason) == ("contractId", reason)


def test_check_digit_refuses_a_body_that_is_not_normalised() -> None:
    """check_digit is only defined on 14 upper-case letters or digits."""
    for body in ("GBTWK01234567", "gbtwk012345678", "GBTWK-01234567"):
        with pytest.raises(ValueError, match="not a 14-character upper-case eMAID body"):
            check_digit(body)


def test_check_digit_alphabet_covers_all_36_characters() -> None:
    """Every letter and digit is the check digit of some body, so any 15th character can be right."""
    seen = {
        check_digit(f"GBTWK0000{a}{b}{c}{d}{e}")
        for a in "0AZ"
        for b in "0AZ"
        for c in "09AZ"
        for d in "0Z"
        for e in ALPHANUMERIC
    }
    assert seen == set(ALPHANUMERIC)


country = st.text(LETTERS + LETTERS.lower(), min_size=2, max_size=2)
party = st.text(ALPHANUMERIC + LETTERS.lower(), min_size=3, max_size=3)
instance = st.text(ALPHANUMERIC + LETTERS.lower(), min_size=9, max_size=9)
bodies = st.builds(lambda c, p, i: (c + p + i).upper(), country, party, instance)


@given(bodies)
def test_body_with_its_check_digit_round_trips(body: str) -> None:
    """A valid 14-character body with its computed digit appended normalises to itself."""
    emaid = body + check_digit(body)
    assert normalize_emaid(emaid) == emaid
    assert normalize_emaid(body) == emaid


@given(country, party, instance, st.booleans())
def test_normalisation_is_idempotent(c: str, p: str, i: str, with_digit: bool) -> None:
    """Normalising a normalised eMAID returns it unchanged."""
    value = c + p + i + (check_digit((c + p + i).upper()) if with_digit else "")
    once = normalize_emaid(value)
    assert normalize_emaid(once) == once


@given(bodies, st.lists(st.booleans(), min_size=3, max_size=3), st.booleans(), st.data())
def test_separators_and_case_do_not_change_the_result(
    body: str, separators: list[bool], with_digit: bool, data: st.DataObject
) -> None:
    """Optional hyphens and any mix of upper and lower case give the same canonical eMAID."""
    digit = check_digit(body)
    parts = [body[:2], body[2:5], body[5:14]] + ([digit] if with_digit else [])
    text = parts[0]
    for part, hyphen in zip(parts[1:], separators, strict=False):
        text += ("-" if hyphen else "") + part
    flips = data.draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    text = "".join(ch.lower() if flip else ch for ch, flip in zip(text, flips, strict=True))
    assert normalize_emaid(text) == body + digit


@given(bodies, st.sampled_from(ALPHANUMERIC + LETTERS.lower()))
def test_any_other_check_digit_is_refused(body: str, wrong: str) -> None:
    """Substituting the check digit by any other letter or digit is refused."""
    digit = check_digit(body)
    if wrong.upper() == digit:
        wrong = ALPHANUMERIC[(ALPHANUMERIC.index(digit) + 1) % len(ALPHANUMERIC)]
    with pytest.raises(InvalidInput) as caught:
        normalize_emaid(body + wrong)
    assert caught.value.reason == "the check digit (15th character) is wrong"


@given(bodies, st.integers(min_value=0, max_value=13), st.sampled_from(ALPHANUMERIC))
def test_a_single_substitution_in_the_body_changes_the_check_digit(body: str, position: int, char: str) -> None:
    """The check digit detects every single-character error in the body (the point of eMI3's scheme)."""
    changed = body[:position] + char + body[position + 1 :]
    if changed != body:
        assert check_digit(changed) != check_digit(body)
