"""What a partner answers during the handshake is held to the spec's bounds before any of it is stored: a longer
list or string fails the handshake with 502 and OCPI status 3001 naming the field, stores nothing and repeats
nothing of the answer."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from maeve_api.ocpi.registration import MAX_ENDPOINTS, MAX_ROLES, MAX_URL, MAX_VERSIONS
from tests.api.conftest import assert_empty, assert_status
from tests.ocpi.hostile import HostileServer, Reply, Request, ocpi_answer

SECRET = "partner-text-4711"
ROLE = {"role": "EMSP", "party_id": "EMS", "country_code": "NL", "business_details": {"name": "eMSP"}}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {base64.b64encode(token.encode()).decode()}"}


class Emsp:
    """A partner whose versions, version details and credentials answers a test shapes."""

    def __init__(self) -> None:
        self.server: HostileServer | None = None
        self.url = ""
        self.versions: Callable[[], list[dict[str, Any]]] = lambda: [
            {"version": "2.2.1", "url": f"{self.url}/ocpi/2.2.1"}
        ]
        self.endpoints: Callable[[], list[dict[str, Any]]] = lambda: [
            {"identifier": "credentials", "role": "RECEIVER", "url": f"{self.url}/ocpi/2.2.1/credentials"},
            {"identifier": "locations", "role": "RECEIVER", "url": f"{self.url}/ocpi/2.2.1/locations"},
        ]
        self.credentials: Callable[[Request], dict[str, Any]] = lambda _request: {
            "token": "token-c-of-the-emsp",
            "url": f"{self.url}/ocpi/versions",
            "roles": [ROLE],
        }

    def answer(self, request: Request) -> Reply:
        if request.path == "/ocpi/versions":
            return Reply(body=ocpi_answer(self.versions()))
        if request.path == "/ocpi/2.2.1":
            return Reply(body=ocpi_answer({"version": "2.2.1", "endpoints": self.endpoints()}))
        return Reply(body=ocpi_answer(self.credentials(request)))


@pytest.fixture
def emsp(make_hostile_server) -> Emsp:
    partner = Emsp()
    partner.server = make_hostile_server(partner.answer)
    partner.url = partner.server.url
    return partner


def _endpoints(emsp: Emsp, count: int) -> list[dict[str, Any]]:
    """The credentials endpoint and ``count - 1`` more."""
    more = [
        {"identifier": f"custom{n}", "role": "SENDER", "url": f"{emsp.url}/ocpi/2.2.1/{SECRET}/{n}"}
        for n in range(count - 1)
    ]
    return [{"identifier": "credentials", "role": "RECEIVER", "url": f"{emsp.url}/ocpi/2.2.1/credentials"}, *more]


def _long_url(emsp: Emsp, length: int) -> str:
    url = f"{emsp.url}/ocpi/2.2.1/{SECRET}/"
    return url + "x" * (length - len(url))


#: (what the partner's version details answer, the field the refusal names, its rule)
BAD_DETAILS: dict[str, tuple[Callable[[Emsp], list[dict[str, Any]]], str, str]] = {
    "too many endpoints": (
        lambda emsp: _endpoints(emsp, MAX_ENDPOINTS + 1),
        "data.endpoints",
        f"must have at most {MAX_ENDPOINTS} items",
    ),
    "an endpoint URL too long": (
        lambda emsp: [
            *_endpoints(emsp, 1),
            {"identifier": "locations", "role": "RECEIVER", "url": _long_url(emsp, MAX_URL + 1)},
        ],
        "data.endpoints[1].url",
        f"must be 1 to {MAX_URL} characters long",
    ),
    "a module identifier too long": (
        lambda emsp: [*_endpoints(emsp, 1), {"identifier": SECRET * 5, "role": "SENDER", "url": f"{emsp.url}/x"}],
        "data.endpoints[1].identifier",
        "must be 1 to 64 characters long",
    ),
    "an endpoint role that is not OCPI's": (
        lambda emsp: [*_endpoints(emsp, 1), {"identifier": "locations", "role": {"x": SECRET}, "url": f"{emsp.url}/x"}],
        "data.endpoints[1].role",
        "must be one of SENDER, RECEIVER",
    ),
}


@pytest.mark.parametrize("case", list(BAD_DETAILS))
def test_a_partner_registering_with_too_much_in_its_endpoints_is_refused(make_instance, emsp, case):
    """The partner's POST of credentials is a 502/3001 naming the field and the bound; nothing is stored, nothing of
    the answer is repeated, and its token A still works for another try."""
    endpoints, field, rule = BAD_DETAILS[case]
    emsp.endpoints = lambda: endpoints(emsp)
    cpo = make_instance()
    assert_empty(cpo.api.post("/register", json={"token": "token-a"}), 201)
    body = {"token": "token-b-of-the-emsp", "url": f"{emsp.url}/ocpi/versions", "roles": [ROLE]}
    response = requests.post(f"{cpo.ocpi_url}/ocpi/2.2.1/credentials", json=body, headers=_auth("token-a"), timeout=15)
    assert (response.status_code, response.json()["status_code"]) == (502, 3001), response.text
    assert response.json()["status_message"] == f"GET version 2.2.1 details: {field}: {rule}"
    assert SECRET not in response.text
    assert cpo.store.parties.all() == []
    assert requests.get(cpo.versions_url, headers=_auth("token-a"), timeout=5).status_code == 200


def test_the_most_endpoints_the_bound_allows_are_stored(make_instance, emsp):
    """A partner listing exactly the most endpoints allowed, each URL of the longest length, is registered."""
    emsp.endpoints = lambda: [
        {**endpoint, "url": _long_url(emsp, MAX_URL)} if n else endpoint
        for n, endpoint in enumerate(_endpoints(emsp, MAX_ENDPOINTS))
    ]
    cpo = make_instance()
    assert_empty(cpo.api.post("/register", json={"token": "token-a"}), 201)
    body = {"token": "token-b-of-the-emsp", "url": f"{emsp.url}/ocpi/versions", "roles": [ROLE]}
    response = requests.post(f"{cpo.ocpi_url}/ocpi/2.2.1/credentials", json=body, headers=_auth("token-a"), timeout=15)
    assert response.status_code == 200, response.text
    assert len(cpo.store.parties.get("NL*EMS")["endpoints"]) == MAX_ENDPOINTS


@pytest.mark.parametrize(
    ("versions", "field", "rule"),
    [
        (
            lambda emsp: [{"version": f"9.{n}", "url": f"{emsp.url}/{SECRET}"} for n in range(MAX_VERSIONS + 1)],
            "data",
            f"must have at most {MAX_VERSIONS} items",
        ),
        (
            lambda emsp: [{"version": "2.2.1", "url": _long_url(emsp, MAX_URL + 1)}],
            "data[0].url",
            f"must be 1 to {MAX_URL} characters long",
        ),
        (
            lambda emsp: [{"version": SECRET * 3, "url": f"{emsp.url}/x"}],
            "data[0].version",
            "must be 1 to 32 characters long",
        ),
    ],
    ids=["too many versions", "a version URL too long", "a version name too long"],
)
def test_an_operator_registering_a_partner_with_too_many_versions_is_refused(
    make_instance, emsp, versions, field, rule
):
    """registerParty with a url whose versions answer breaks a bound is a 502 naming the field; nothing is called
    after it and nothing is stored."""
    emsp.versions = lambda: versions(emsp)
    cpo = make_instance()
    response = cpo.api.post("/register", json={"token": "token-a", "url": f"{emsp.url}/ocpi/versions"})
    body = assert_status(response, 502)
    assert body["error"] == f"GET versions: {field}: {rule}"
    assert SECRET not in response.text
    assert cpo.store.parties.all() == []
    assert emsp.server is not None
    assert [request.path for request in emsp.server.received] == ["/ocpi/versions"]


@pytest.mark.parametrize(
    ("credentials", "field", "rule"),
    [
        (
            {"roles": [{**ROLE, "party_id": f"{n:03d}"} for n in range(MAX_ROLES + 1)]},
            "data.roles",
            f"must have at most {MAX_ROLES} items",
        ),
        ({"roles": [{**ROLE, "party_id": SECRET}]}, "data.roles[0].party_id", "must be three letters or digits"),
        ({"roles": [{**ROLE, "country_code": SECRET}]}, "data.roles[0].country_code", "must be two letters"),
        ({"roles": [{**ROLE, "role": SECRET}]}, "data.roles[0].role", "must be one of CPO, EMSP"),
        (
            {"roles": [{**ROLE, "business_details": {"name": SECRET * 10}}]},
            "data.roles[0].business_details",
            "must be OCPI BusinessDetails",
        ),
        ({"token": f"{SECRET} with spaces"}, "data.token", "must be printable ASCII characters without spaces"),
        ({"token": SECRET * 5}, "data.token", "must be 1 to 64 characters long"),
        ({"url": SECRET * 20}, "data.url", "must be a URL of 1 to 255 characters"),
    ],
    ids=[
        "too many roles",
        "party_id",
        "country_code",
        "role",
        "business_details",
        "token spaces",
        "token length",
        "url",
    ],
)
def test_a_partners_credentials_answer_out_of_bounds_is_refused(make_instance, emsp, credentials, field, rule):
    """The partner's answer to our POST of credentials is held to the spec's Credentials bounds: a 502 naming the
    field, no party stored, and the token we offered it no longer works."""
    base = emsp.credentials
    emsp.credentials = lambda request: {**base(request), **credentials}
    cpo = make_instance()
    response = cpo.api.post("/register", json={"token": "token-a", "url": f"{emsp.url}/ocpi/versions"})
    assert_status(response, 502, f"POST credentials: {field}: {rule}")
    assert SECRET not in response.text
    assert cpo.store.parties.all() == []
    assert emsp.server is not None
    offered = [json.loads(r.body)["token"] for r in emsp.server.received if r.method == "POST"]
    assert offered
    for token in offered:
        assert requests.get(cpo.versions_url, headers=_auth(token), timeout=5).status_code == 401
