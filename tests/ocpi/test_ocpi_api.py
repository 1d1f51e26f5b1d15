"""The OCPI listener through the real app: auth, envelope and headers, locations SENDER and tokens RECEIVER."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from prometheus_client import generate_latest

from maeve_api.documents import OCPI_SPEC, load_spec
from maeve_api.domain.schemas import LOCATION as LOCATION_SCHEMA
from maeve_api.domain.schemas import TOKEN as TOKEN_SCHEMA
from maeve_api.ocpi.app import create_ocpi_app
from maeve_api.ocpi.registration import token_hash
from maeve_api.settings import Settings
from maeve_api.storage import Storage
from maeve_api.storage.sqlite import SqliteStorage
from tests.api.test_locations import LOCATION
from tests.api.test_metrics import sample
from tests.api.test_tokens import make_token

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
PARTY_TOKEN = "party-token-c"
EMAID = "NL-EMS-012345678"

TOKEN = {
    "country_code": "NL",
    "party_id": "EMS",
    "uid": "DEADBEEF",
    "type": "RFID",
    "contract_id": EMAID,
    "issuer": "Strict eMSP",
    "valid": True,
    "whitelist": "ALLOWED",
    "language": "nl",
    "last_updated": "2026-01-01T00:00:00Z",
}


@pytest.fixture
def store(tmp_path) -> Iterator[Storage]:
    storage = SqliteStorage(tmp_path / "ocpi.db")
    storage.registrations.put(token_hash("pending-a"), "PENDING")
    storage.parties.create(
        {
            "key": "NL*EMS",
            "roles": [{"role": "EMSP", "country_code": "NL", "party_id": "EMS", "business_details": {"name": "E"}}],
            "version": "2.2.1",
            "versions_url": "http://emsp.invalid/ocpi/versions",
            "endpoints": [],
            "outbound_token": "to-emsp",
            "token_encoding": "base64",
            "inbound_token_hash": token_hash(PARTY_TOKEN),
            "registered_at": LOCATION_SCHEMA.load({**LOCATION, "id": "x"})["last_updated"],
        }
    )
    yield storage
    storage.close()


@pytest.fixture
def client(store: Storage) -> Iterator[httpx2.Client]:
    settings = Settings(validate_responses=True, ocpi_external_url="https://ocpi.example.com")
    app = create_ocpi_app(settings, storage_factory=lambda: store, publish=False)
    with app.test_client(base_url="http://testserver/ocpi") as test_client:
        yield test_client


def auth(token: str = PARTY_TOKEN, raw: bool = False) -> dict[str, str]:
    return {"Authorization": f"Token {token if raw else base64.b64encode(token.encode()).decode()}"}


def assert_envelope(response: httpx2.Response, http_status: int, status_code: int) -> Any:
    """The response is an OCPI envelope with these codes and a UTC timestamp; returns its data."""
    assert response.status_code == http_status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status_code"] == status_code
    assert TIMESTAMP.fullmatch(body["timestamp"])
    assert set(body) <= {"data", "status_code", "status_message", "timestamp"}
    return body.get("data")


def test_versions_accept_base64_and_raw_tokens(client):
    """Both token encodings reach the versions list, which offers 2.2.1 and 2.2 under the external URL."""
    for headers in (auth(), auth(raw=True), auth("pending-a"), auth("pending-a", raw=True)):
        data = assert_envelope(client.get("/versions", headers=headers), 200, 1000)
        assert data == [
            {"version": "2.2.1", "url": "https://ocpi.example.com/ocpi/2.2.1"},
            {"version": "2.2", "url": "https://ocpi.example.com/ocpi/2.2"},
        ]


@pytest.mark.parametrize("version", ["2.2.1", "2.2"])
def test_version_details_advertise_our_modules(client, version):
    """The details list credentials, locations as SENDER and tokens as RECEIVER, without trailing slashes."""
    data = assert_envelope(client.get(f"/{version}", headers=auth("pending-a")), 200, 1000)
    base = f"https://ocpi.example.com/ocpi/{version}"
    assert data == {
        "version": version,
        "endpoints": [
            {"identifier": "credentials", "role": "SENDER", "url": f"{base}/credentials"},
            {"identifier": "credentials", "role": "RECEIVER", "url": f"{base}/credentials"},
            {"identifier": "locations", "role": "SENDER", "url": f"{base}/locations"},
            {"identifier": "tokens", "role": "RECEIVER", "url": f"{base}/tokens"},
        ],
    }


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/versions", {}),
        ("/versions", {"Authorization": "Token nobody"}),
        ("/versions", {"Authorization": "Bearer " + PARTY_TOKEN}),
        ("/2.2.1/locations", auth("pending-a")),
        ("/2.2.1/tokens/NL/EMS/DEADBEEF", auth("pending-a")),
    ],
)
def test_unknown_or_pending_tokens_are_401(client, path, headers):
    """Missing, unknown or wrongly typed tokens, and a PENDING token A on a functional module, are 401."""
    assert_envelope(client.get(path, headers=headers), 401, 2000)


def test_ids_are_echoed_or_made_up(client):
    """X-Request-ID and X-Correlation-ID are echoed, on errors too, and made up when missing."""
    ids = {"X-Request-ID": "req-1", "X-Correlation-ID": "corr-1"}
    for response in (client.get("/versions", headers={**auth(), **ids}), client.get("/versions", headers=ids)):
        assert (response.headers["x-request-id"], response.headers["x-correlation-id"]) == ("req-1", "corr-1")
    made_up = client.get("/versions", headers=auth())
    assert made_up.headers["x-request-id"] and made_up.headers["x-correlation-id"]


def test_credentials_methods_check_the_registration(client):
    """GET answers our credentials with the caller's token; PUT and DELETE with a token A are 405."""
    data = assert_envelope(client.get("/2.2.1/credentials", headers=auth("pending-a")), 200, 1000)
    assert data == {
        "token": "pending-a",
        "url": "https://ocpi.example.com/ocpi/versions",
        "roles": [{"role": "CPO", "business_details": {"name": "MaEVe"}, "party_id": "TWK", "country_code": "GB"}],
    }
    assert_envelope(client.delete("/2.2.1/credentials", headers=auth("pending-a")), 405, 2000)
    credentials = {**data, "url": "http://127.0.0.1:9/ocpi/versions"}
    assert_envelope(client.put("/2.2.1/credentials", json=credentials, headers=auth("pending-a")), 405, 2000)
    assert_envelope(client.post("/2.2.1/credentials", json=credentials, headers=auth()), 405, 2000)


def test_a_partner_that_cannot_be_reached_is_3001(client, store):
    """POST credentials whose versions URL does not answer is 3001, and token A keeps working."""
    credentials = {
        "token": "b",
        "url": "http://127.0.0.1:9/ocpi/versions",
        "roles": [{"role": "EMSP", "business_details": {"name": "E"}, "party_id": "ABC", "country_code": "DE"}],
    }
    response = client.post("/2.2.1/credentials", json=credentials, headers=auth("pending-a"))
    assert "GET versions" in response.json()["status_message"]
    assert_envelope(response, 502, 3001)
    assert store.registrations.find(token_hash("pending-a")) is not None
    assert store.parties.find("DE*ABC") is None


def _locations(store: Storage, count: int) -> None:
    for index in range(count):
        store.locations.put(LOCATION_SCHEMA.load({**LOCATION, "id": f"loc{index:02d}"}))


def test_locations_are_paginated_with_link_and_counts(client, store):
    """Pages follow offset and limit, with X-Total-Count, X-Limit and a Link to the next page until the last."""
    _locations(store, 5)
    first = client.get("/2.2.1/locations", params={"limit": 2}, headers=auth())
    data = assert_envelope(first, 200, 1000)
    assert [location["id"] for location in data] == ["loc00", "loc01"]
    assert (first.headers["x-total-count"], first.headers["x-limit"]) == ("5", "100")
    assert first.headers["link"] == '<https://ocpi.example.com/ocpi/2.2.1/locations?limit=2&offset=2>; rel="next"'
    last = client.get("/2.2.1/locations", params={"limit": 2, "offset": 4}, headers=auth())
    assert [location["id"] for location in assert_envelope(last, 200, 1000)] == ["loc04"]
    assert "link" not in last.headers
    location = data[0]
    assert (location["publish"], location["time_zone"], location["country_code"]) == (True, "UTC", "GB")
    assert TIMESTAMP.fullmatch(location["last_updated"])


@pytest.mark.parametrize("suffix", ["Z", "+00:00", ""])
def test_locations_filter_by_date(client, store, suffix):
    """date_from is inclusive and date_to exclusive; a time without offset is UTC."""
    _locations(store, 1)
    stamp = store.locations.get("loc00")["last_updated"].strftime("%Y-%m-%dT%H:%M:%S.%f") + suffix
    since = client.get("/2.2.1/locations", params={"date_from": stamp}, headers=auth())
    until = client.get("/2.2.1/locations", params={"date_to": stamp}, headers=auth())
    assert len(assert_envelope(since, 200, 1000)) == 1
    assert assert_envelope(until, 200, 1000) == []
    assert until.headers["x-total-count"] == "0"


@pytest.mark.parametrize("value", ["2026-13-01T00:00:00Z", "2026-01-01", "yesterday"])
def test_a_bad_date_is_2001(client, value):
    """A date_from that is not an RFC 3339 date and time is 400 with 2001."""
    assert_envelope(client.get("/2.2.1/locations", params={"date_from": value}, headers=auth()), 400, 2001)


def test_location_evse_and_connector(client, store):
    """A location, one of its EVSEs and one connector are found; unknown ones are 404 with 2003."""
    _locations(store, 1)
    location = assert_envelope(client.get("/2.2.1/locations/loc00", headers=auth()), 200, 1000)
    assert location["id"] == "loc00"
    evse = assert_envelope(client.get("/2.2.1/locations/loc00/cs001-1", headers=auth()), 200, 1000)
    assert evse["evse_id"] == "GB*TWK*E001*1"
    connector = assert_envelope(client.get("/2.2.1/locations/loc00/cs001-1/1", headers=auth()), 200, 1000)
    assert connector["max_voltage"] == 400
    for path in ("/2.2.1/locations/nope", "/2.2.1/locations/loc00/nope", "/2.2.1/locations/loc00/cs001-1/9"):
        assert_envelope(client.get(path, headers=auth()), 404, 2003)


def test_tokens_put_get_patch(client, store):
    """PUT stores the token in the setToken store (contract id as sent, its eMAID form for lookups), GET returns
    it as sent, PATCH changes fields."""
    path = "/2.2.1/tokens/NL/EMS/DEADBEEF"
    assert_envelope(client.put(path, json=TOKEN, headers=auth()), 201, 1000)
    assert_envelope(client.put(path, json=TOKEN, headers=auth()), 200, 1000)
    stored = store.tokens.get("DEADBEEF")
    assert (stored["contract_id"], stored["emaid"], stored["cache_mode"]) == (EMAID, "NLEMS012345678S", "ALLOWED")
    assert stored["language_code"] == "nl"
    assert store.tokens.find_by_contract_id("NLEMS012345678S")["uid"] == "DEADBEEF"
    data = assert_envelope(client.get(path, headers=auth()), 200, 1000)
    assert data == TOKEN
    patch = {"valid": False, "last_updated": "2026-01-02T00:00:00Z"}
    assert_envelope(client.patch(path, json=patch, headers=auth()), 200, 1000)
    assert store.tokens.get("DEADBEEF")["valid"] is False


def test_unknown_tokens_are_404_with_2004(client):
    """GET and PATCH of a token we do not have are 404 with 2004, never a server error."""
    path = "/2.2.1/tokens/NL/EMS/UNKNOWN"
    assert_envelope(client.get(path, headers=auth()), 404, 2004)
    assert_envelope(client.patch(path, json={"last_updated": "2026-01-01T00:00:00Z"}, headers=auth()), 404, 2004)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/2.2.1/tokens/NL/EMS/OTHER", TOKEN),
        ("/2.2.1/tokens/NL/EMS/DEADBEEF", {**TOKEN, "valid": "yes"}),
        ("/2.2.1/tokens/NL/EMS/DEADBEEF?type=APP_USER", TOKEN),
    ],
)
def test_bad_tokens_are_400_with_2001(client, store, path, body):
    """A body that disagrees with the path or the type parameter, or a wrongly typed field, is 2001."""
    assert_envelope(client.put(path, json=body, headers=auth()), 400, 2001)
    assert store.tokens.find("DEADBEEF") is None


def test_a_token_of_a_party_the_caller_is_not_is_403_with_2001(client, store):
    """PUT under a country and party that are not the caller's is refused, and nothing is stored."""
    response = client.put("/2.2.1/tokens/DE/EMS/DEADBEEF", json={**TOKEN, "country_code": "DE"}, headers=auth())
    assert_envelope(response, 403, 2001)
    assert store.tokens.find("DEADBEEF") is None


def test_a_partner_cannot_read_another_partys_token(client, store):
    """GET of a token under a country and party that are not the caller's is 403 with 2001 and shows nothing."""
    store.tokens.put(TOKEN_SCHEMA.load(make_token(countryCode="DE", partyId="ABC", uid="THEIRS")))
    response = client.get("/2.2.1/tokens/DE/ABC/THEIRS", headers=auth())
    assert_envelope(response, 403, 2001)
    assert "data" not in response.json() or response.json()["data"] is None


def test_tokens_never_reach_the_log(client, caplog):
    """Neither a refused token nor an accepted one, in either encoding, appears in any log record."""
    caplog.set_level(logging.DEBUG)
    client.get("/versions", headers=auth("secret-refused-token"))
    client.get("/versions", headers=auth("secret-refused-token", raw=True))
    client.get("/2.2.1/locations/nope", headers=auth())
    for secret in ("secret-refused-token", PARTY_TOKEN, base64.b64encode(PARTY_TOKEN.encode()).decode()):
        assert secret not in caplog.text


@pytest.mark.parametrize(
    "path", ["/ready", "/metrics", "/ocpi/openapi.json", "/ocpi/ui/", "/api/v0/ui/", "/api/v0/openapi.json"]
)
def test_the_ocpi_listener_serves_no_deployment_details(client, path):
    """Partners reach OCPI and /health only: readiness, metrics and the documents stay on the internal listener."""
    response = client.get(f"http://testserver{path}")
    assert response.status_code in (401, 404)  # /ocpi/openapi.json reads as an unsupported version
    assert response.json()["status_code"] == 2000 and "data" not in response.json()


def test_the_ocpi_listener_serves_health_and_counts_its_requests(client):
    """/health answers on the OCPI listener, and its requests are counted as listener ocpi (shown by the internal
    listener's /metrics)."""
    client.get("/versions", headers=auth())
    assert client.get("http://testserver/health").json() == {"status": "OK"}
    labels = {"listener": "ocpi", "operation": "getVersions", "method": "GET", "status": "200"}
    assert sample(generate_latest().decode(), "maeve_http_requests_total", **labels) >= 1


def test_status_messages_name_the_field_and_repeat_no_value(client, store):
    """OCPI status messages follow the ``field: rule`` style and never repeat the ids or values sent."""
    _locations(store, 1)
    messages = {
        "location": client.get("/2.2.1/locations/SECRET-LOCATION", headers=auth()),
        "evse": client.get("/2.2.1/locations/loc00/SECRET-EVSE", headers=auth()),
        "token": client.get("/2.2.1/tokens/NL/EMS/SECRET-UID", headers=auth()),
        "body": client.put(
            "/2.2.1/tokens/NL/EMS/DEADBEEF", json={**TOKEN, "valid": "SECRET", "issuer": None}, headers=auth()
        ),
        "method": client.post("/2.2.1/locations/SECRET-LOCATION", headers=auth()),
    }
    texts = {name: response.json()["status_message"] for name, response in messages.items()}
    assert texts == {
        "location": "location_id: no such location",
        "evse": "evse_uid: the location has no such EVSE",
        "token": "token_uid: no such token",
        "body": "issuer: is required; valid: must be true or false",
        "method": "method: POST is not allowed here; allowed: GET, HEAD",
    }


def test_the_token_examples_are_accepted(client, store):
    """The documented PUT and PATCH token examples, with their eMAID check digit, are stored."""
    paths = load_spec(OCPI_SPEC)["paths"]["/{version}/tokens/{country_code}/{party_id}/{token_uid}"]
    put = paths["put"]["requestBody"]["content"]["application/json"]["example"]
    patch = paths["patch"]["requestBody"]["content"]["application/json"]["example"]
    path = f"/2.2.1/tokens/{put['country_code']}/{put['party_id']}/{put['uid']}"
    assert_envelope(client.put(path, json=put, headers=auth()), 201, 1000)
    assert_envelope(client.patch(path, json=patch, headers=auth()), 200, 1000)
    assert store.tokens.get(put["uid"])["valid"] is False
