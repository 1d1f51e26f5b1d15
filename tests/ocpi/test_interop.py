"""Interop with a lax OCPI 2.2.1 eMSP in the style of the PyPI ``extrawest-ocpi`` library, both directions.

That peer sends every unset optional field as JSON null, lower-cases identifiers (uid, country_code, party_id,
contract_id), uses trailing slashes and sends neither X-Request-ID/X-Correlation-ID nor routing headers. The
library itself pins starlette 0.27 and httpx 0.24, which cannot be installed beside Connexion 3, so its
behaviour is reproduced here on the strict eMSP of tests/ocpi/partner.py.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from maeve_api.ocpi.registration import token_hash
from tests.api.conftest import assert_empty
from tests.ocpi.partner import Partner

#: Settings every instance of this module runs with (partners on loopback).
INSTANCE: dict[str, Any] = {}

TOKEN = {
    "country_code": "nl",
    "party_id": "ems",
    "uid": "abc123",
    "type": "RFID",
    "contract_id": "nl-ems-c12345678",
    "visual_number": None,
    "issuer": "py-ocpi eMSP",
    "group_id": None,
    "valid": True,
    "whitelist": "ALLOWED",
    "language": None,
    "default_profile_type": "GREEN",
    "energy_contract": {"supplier_name": "Green Energy", "contract_id": None},
    "last_updated": "2026-01-01T10:11:12.345Z",
}


@dataclass
class LaxPartner(Partner):
    """The strict eMSP, but with credentials as the lax library writes them: nulls and lower-case identifiers."""

    def our_credentials(self, token: str) -> dict[str, Any]:
        return {
            "token": token,
            "url": self.versions_url,
            "roles": [
                {
                    "role": "EMSP",
                    "business_details": {"name": "py-ocpi eMSP", "website": None, "logo": None},
                    "party_id": self.party_id.lower(),
                    "country_code": self.country_code.lower(),
                }
            ],
        }


def lax_call(method: str, url: str, token: str, body: Any = None) -> requests.Response:
    """A call as the lax peer makes it: base64 token, no ids, no routing headers, no redirects followed."""
    headers = {"Authorization": f"Token {base64.b64encode(token.encode()).decode()}"}
    return requests.request(method, url, json=body, headers=headers, timeout=5, allow_redirects=False)


@pytest.fixture
def lax_partner(make_partner):
    """A lax eMSP served on loopback."""
    partner = LaxPartner()
    partner.start()
    yield partner
    partner.stop()


def _registered(make_instance: Any, lax_partner: LaxPartner, slash: str = "", nulls: bool = True) -> tuple[Any, str]:
    """An instance the lax eMSP registered with (through trailing-slash URLs with ``slash="/"``, with credentials
    free of nulls unless ``nulls``); returns it and the token C."""
    cpo = make_instance(**INSTANCE)
    assert_empty(cpo.api.post("/register", json={"token": "lax-token-a"}), 201)
    versions = lax_call("GET", f"{cpo.versions_url}{slash}", "lax-token-a")
    assert versions.status_code == 200, versions.text
    details = lax_call("GET", f"{versions.json()['data'][0]['url']}{slash}", "lax-token-a")
    assert details.status_code == 200
    credentials_url = next(e["url"] for e in details.json()["data"]["endpoints"] if e["identifier"] == "credentials")
    token_b = secrets.token_urlsafe(12)
    lax_partner.accepted = {token_b}
    credentials = lax_partner.our_credentials(token_b) if nulls else Partner.our_credentials(lax_partner, token_b)
    answer = lax_call("POST", f"{credentials_url}{slash}", "lax-token-a", credentials)
    assert answer.status_code == 200, answer.text
    return cpo, answer.json()["data"]["token"]


def test_a_lax_emsp_registers_with_us(make_instance, lax_partner):
    """Nulls in its credentials and lower-case identities register it, under NL*EMS."""
    cpo, token_c = _registered(make_instance, lax_partner)
    party = cpo.store.parties.find_by_inbound_token_hash(token_hash(token_c))
    assert (party["key"], party["roles"][0]["business_details"]) == ("NL*EMS", {"name": "py-ocpi eMSP"})
    assert lax_call("GET", f"{cpo.ocpi_url}/ocpi/2.2.1/locations", token_c).status_code == 200


def test_a_lax_emsp_registers_through_trailing_slashes(make_instance, lax_partner):
    """The whole handshake through URLs with a trailing slash registers it."""
    cpo, token_c = _registered(make_instance, lax_partner, slash="/", nulls=False)
    assert lax_call("GET", f"{cpo.ocpi_url}/ocpi/2.2.1/locations/", token_c).status_code == 200


def test_we_register_with_a_lax_emsp(make_instance, lax_partner):
    """A lax eMSP's credentials answer, nulls and lower-case identity included, registers it."""
    cpo = make_instance(**INSTANCE)
    response = cpo.api.post("/register", json={"token": lax_partner.token_a, "url": lax_partner.versions_url})
    assert_empty(response, 201)
    [party] = cpo.store.parties.all()
    assert (party["key"], party["roles"][0]["business_details"]) == ("NL*EMS", {"name": "py-ocpi eMSP"})
    assert lax_call("GET", f"{cpo.ocpi_url}/ocpi/2.2.1/locations", lax_partner.their_token).status_code == 200


def test_tokens_as_a_lax_emsp_sends_them(make_instance, lax_partner):
    """Nulls are absent, the uid matches in any case, every field is kept as sent and ``type`` is honoured."""
    cpo, token_c = _registered(make_instance, lax_partner, nulls=False)
    base = f"{cpo.ocpi_url}/ocpi/2.2.1/tokens"
    assert lax_call("PUT", f"{base}/nl/ems/abc123", token_c, TOKEN).status_code == 201
    got = lax_call("GET", f"{base}/NL/EMS/ABC123", token_c)
    assert got.status_code == 200
    expected = {key: value for key, value in TOKEN.items() if value is not None}
    expected["energy_contract"] = {"supplier_name": "Green Energy"}
    assert got.json()["data"] == expected
    again = lax_call("PUT", f"{base}/NL/EMS/ABC123", token_c, {**TOKEN, "uid": "ABC123", "valid": False})
    assert again.status_code == 200
    patched = lax_call(
        "PATCH", f"{base}/nl/ems/Abc123", token_c, {"valid": True, "last_updated": TOKEN["last_updated"]}
    )
    assert patched.status_code == 200
    assert [token["uid"] for token in cpo.store.tokens.page(0, 10)] == ["ABC123"]
    assert cpo.store.tokens.get("abc123")["valid"] is True
    assert cpo.store.tokens.find_by_contract_id("NLEMSC12345678O")["uid"] == "ABC123"
    assert cpo.api.get("/token/abc123").json()["contractId"] == "NLEMSC12345678O"
    other_type = lax_call("GET", f"{base}/NL/EMS/ABC123?type=APP_USER", token_c)
    assert (other_type.status_code, other_type.json()["status_code"]) == (404, 2004)
    patch_type = lax_call(
        "PATCH", f"{base}/NL/EMS/ABC123?type=APP_USER", token_c, {"valid": False, "last_updated": TOKEN["last_updated"]}
    )
    assert patch_type.status_code == 404
    retyped = lax_call("PUT", f"{base}/NL/EMS/ABC123?type=APP_USER", token_c, {**TOKEN, "type": "APP_USER"})
    assert (retyped.status_code, retyped.json()["status_code"]) == (400, 2001)
    assert "type RFID" in retyped.json()["status_message"]
    assert cpo.store.tokens.get("ABC123")["type"] == "RFID"


def test_functional_modules_answer_with_routing_headers(make_instance, lax_partner):
    """Locations and tokens answers, errors included, come from us and go to the caller; versions carry none."""
    cpo, token_c = _registered(make_instance, lax_partner, nulls=False)
    expected = {
        "ocpi-from-country-code": "GB",
        "ocpi-from-party-id": "CPO",
        "ocpi-to-country-code": "NL",
        "ocpi-to-party-id": "EMS",
    }
    for url in (f"{cpo.ocpi_url}/ocpi/2.2.1/locations", f"{cpo.ocpi_url}/ocpi/2.2.1/tokens/NL/EMS/NONE"):
        response = lax_call("GET", url, token_c)
        assert {name: response.headers.get(name) for name in expected} == expected
    versions = lax_call("GET", cpo.versions_url, token_c)
    assert not [name for name in versions.headers if name.lower().startswith("ocpi-")]


@pytest.mark.parametrize("body", [{}, {"token": None}, TOKEN])
def test_post_credentials_when_registered_is_405_whatever_the_body(make_instance, lax_partner, body):
    """A registered party's POST of credentials is 405 whatever it sends, with an Allow that omits POST."""
    cpo, token_c = _registered(make_instance, lax_partner, nulls=False)
    response = lax_call("POST", f"{cpo.ocpi_url}/ocpi/2.2.1/credentials", token_c, body)
    assert (response.status_code, response.json()["status_code"]) == (405, 2000)
    assert "POST" not in response.headers["Allow"]
    assert "PUT" in response.headers["Allow"]


@pytest.mark.parametrize("path", ["/ocpi/2.1.1", "/ocpi/2.1.1/credentials", "/ocpi/2.1.1/"])
def test_an_unsupported_version_is_404(make_instance, path):
    """A version we do not serve is 404 in the envelope, not a validation error."""
    cpo = make_instance(**INSTANCE)
    assert_empty(cpo.api.post("/register", json={"token": "lax-token-a"}), 201)
    response = lax_call("GET", f"{cpo.ocpi_url}{path}", "lax-token-a")
    assert (response.status_code, response.json()["status_code"]) == (404, 2000)


@pytest.mark.parametrize(
    "path", ["/ocpi/versions/", "/ocpi/2.2.1/", "/ocpi/2.2.1/locations/", "/ocpi/2.2/credentials/"]
)
def test_trailing_slashes_are_answered_like_the_path_without(make_instance, path):
    """A trailing slash gets the same answer as the path without it, never a redirect."""
    cpo = make_instance(**INSTANCE)
    assert_empty(cpo.api.post("/register", json={"token": "op-token", "status": "REGISTERED"}), 201)
    with_slash = lax_call("GET", f"{cpo.ocpi_url}{path}", "op-token")
    without = lax_call("GET", f"{cpo.ocpi_url}{path.rstrip('/')}", "op-token")
    assert with_slash.status_code == without.status_code == 200
    assert with_slash.json()["data"] == without.json()["data"]


def test_a_502_reports_both_attempts_of_the_token_encodings(make_instance, make_partner):
    """A partner refusing our token in base64 and raw is a 502 that reports both answers."""
    partner = make_partner(failure="401")
    cpo = make_instance(**INSTANCE)
    response = cpo.api.post("/register", json={"token": partner.token_a, "url": partner.versions_url})
    assert response.status_code == 502
    error = response.json()["error"]
    assert "base64" in error and "raw" in error
    assert error.count("401") == 2
