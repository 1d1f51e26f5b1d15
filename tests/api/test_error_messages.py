"""Every 4xx says ``<field>: <rule>`` in plain words, names every failing field and repeats no value sent."""

from __future__ import annotations

import logging
import re

import pytest
import yaml

from maeve_api.documents import SPEC_DIR
from maeve_api.web.validation import MAX_REPORTED, PATTERN_RULES
from tests.api.conftest import assert_status
from tests.api.test_tokens import make_token

#: What a message in the house style looks like: one or more ``field: rule`` parts joined by "; ".
STYLE = re.compile(r"[A-Za-z][\w.\[\]/ -]*: [^;]+(; [A-Za-z][\w.\[\]/ -]*: [^;]+)*(; and \d+ more)?")
SECRET = "SECRET-VALUE-42"


def assert_plain(message: str) -> None:
    """The message follows the house style and shows no regular expression and no value sent."""
    assert STYLE.fullmatch(message), message
    assert not re.search(r"[\^$]|\{\d|\\\\", message), message
    assert SECRET not in message


def test_every_missing_field_is_named_up_to_a_handful(client):
    """A body missing eight required fields names five of them and counts the rest."""
    body = assert_status(client.post("/token", json={}), 400)
    assert_plain(body["error"])
    parts = body["error"].split("; ")
    assert len(parts) == MAX_REPORTED + 1 and parts[-1] == "and 3 more"
    assert all(part.endswith(": is required") for part in parts[:-1])
    assert parts[0] == "countryCode: is required"


def test_several_broken_rules_are_all_named(client):
    """Each failing field of one body gets its own part, with its rule in plain words."""
    token = make_token(countryCode="G", partyId="T", valid="yes", uid=SECRET + "x" * 40)
    error = assert_status(client.post("/token", json=token), 400)["error"]
    assert_plain(error)
    assert "countryCode: must be two letters" in error
    assert "partyId: must be three letters or digits" in error
    assert "valid: must be true or false" in error
    assert "uid: must be at most 36 characters long" in error


def test_an_unknown_field_is_named_as_unknown(client):
    """A misspelt field is named, in the house style, instead of jsonschema's dump of the properties."""
    error = assert_status(client.post("/cs/cs001", json={"securityProfile": 0, "securityProfil": 1}), 400)["error"]
    assert error == "securityProfil: is not a known field"


def test_a_pattern_is_described_in_words_without_the_value(client):
    """A password hash of the wrong shape is explained in words; neither the regex nor the value is shown."""
    response = client.post("/cs/cs001", json={"securityProfile": 1, "base64SHA256Password": SECRET})
    error = assert_status(response, 400)["error"]
    assert_plain(error)
    assert error.startswith("base64SHA256Password: must be the padded standard base64 of a 32-byte SHA-256")


def test_a_missing_body_is_named(client):
    """A POST without a body says the body is required."""
    response = client.post("/token", headers={"content-type": "application/json"})
    assert assert_status(response, 400)["error"] == "body: is required"


def test_query_parameters_are_all_named(client):
    """An unknown query parameter and wrongly typed or out-of-range ones are each named."""
    error = assert_status(client.get("/token", params={"offst": "1", "offset": "-1", "limit": "many"}), 400)["error"]
    assert_plain(error)
    assert "offst: is not a known query parameter" in error
    assert "offset: must be at least 0" in error
    assert "limit: must be an integer" in error


def test_a_path_parameter_is_named(client):
    """A path value over its length is named by the parameter, not repeated."""
    error = assert_status(client.get(f"/cs/{SECRET}{'x' * 30}/auth"), 400)["error"]
    assert error == "csId: must be at most 28 characters long"


def test_405_names_the_method_and_not_the_path(client):
    """A wrong method is named with the allowed ones; the path, which holds ids, is not repeated."""
    error = assert_status(client.put(f"/cs/{SECRET}/auth"), 405)["error"]
    assert error == "method: PUT is not allowed here; allowed: GET, HEAD"


def test_415_does_not_repeat_the_content_type(client):
    """A body of another media type is refused naming the header and the one type accepted."""
    response = client.post("/cs/cs001", content=b"{}", headers={"content-type": f"text/{SECRET}"})
    assert assert_status(response, 415)["error"] == "Content-Type: must be application/json"


def test_warnings_carry_the_message_once_and_no_path_values(client, caplog):
    """The WARNING line of a 4xx holds its status once and the message sent, never the path's values."""
    with caplog.at_level(logging.WARNING, logger="maeve_api"):
        client.get(f"/token/{SECRET}")
        client.get(f"/nothing/{SECRET}")
    lines = [record.getMessage() for record in caplog.records if record.name.startswith("maeve_api")]
    assert lines == ["404 token: not found", "404 path: no resource is served at this path"]


@pytest.mark.parametrize("document", ["openapi.yaml", "ocpi.yaml"])
def test_every_pattern_of_the_specs_has_plain_words(document):
    """Each pattern either document declares is described in words, so no message falls back to a regex."""
    text = (SPEC_DIR / document).read_text()
    patterns = {value for value in _values(yaml.safe_load(text), "pattern") if isinstance(value, str)}
    assert patterns - PATTERN_RULES.keys() == set()


def _values(node, key):
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key:
                yield value
            yield from _values(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from _values(item, key)
