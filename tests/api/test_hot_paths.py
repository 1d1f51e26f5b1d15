"""The spec's hot lookups answer exactly as Connexion would, and leave everything they cannot serve to it."""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from connexion.exceptions import NonConformingResponseBody
from connexion.jsonifier import Jsonifier
from connexion.validators import JSONResponseBodyValidator

from maeve_api.documents import load_spec
from maeve_api.settings import Settings
from maeve_api.storage import Storage
from maeve_api.web.app import create_app, handler_name
from maeve_api.web.hot_paths import HotPathError, HotPaths, hot_routes
from tests.api.test_tokens import make_token
from tests.factories import make_certificate_pem

TEST_CONTROLLER = "tests.api.test_hot_paths"


@pytest.fixture(scope="module")
def connexion_app(current_storage: Any) -> Any:
    """The API as Connexion alone serves it: no operation is marked hot."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("maeve_api.web.app.hot_routes", lambda *_: [])
        return create_app(Settings(validate_responses=True), storage_factory=current_storage)


@pytest.fixture
def connexion_client(connexion_app: Any, client: httpx2.Client) -> Iterator[httpx2.Client]:
    """A client of ``connexion_app`` on the same store as ``client``."""
    with connexion_app.test_client(base_url="http://testserver/api/v0") as test_client:
        yield test_client


def test_the_spec_marks_the_three_lookups_hot():
    """The auth, certificate and token lookups are the hot routes, each with its handler."""
    routes = hot_routes(load_spec(), handler_name)
    assert {route.router_id for route in routes} == {
        "maeve_api.handlers.charge_stations.lookup_charge_station_auth",
        "maeve_api.handlers.certificates.lookup_certificate",
        "maeve_api.handlers.tokens.lookup_token",
    }


def test_hot_answers_are_connexions_answers(client, connexion_client):
    """Every lookup, found or not, valid or refused, gets the same status, type and bytes as from Connexion."""
    client.post("/cs/cs-1", json={"securityProfile": 2, "base64SHA256Password": "A" * 43 + "="})
    client.post("/cs/cs-2", json={"securityProfile": 0})
    location = client.post("/certificate", json={"certificate": make_certificate_pem()}).headers["location"]
    certificate_hash = location.rsplit("/", 1)[1]
    client.post("/token", json=make_token(uid="AB/01"))
    client.post("/token", json=make_token(uid="0102"))
    paths = [
        "/cs/cs-1/auth",
        "/cs/cs-2/auth",
        "/cs/unknown/auth",
        "/cs/" + "x" * 29 + "/auth",
        "/cs/cs-1/auth?verbose=1",
        f"/certificate/{certificate_hash}",
        f"/certificate/{certificate_hash}=",
        "/certificate/" + "A" * 43,
        "/certificate/short",
        "/token/0102",
        "/token/AB%2F01",
        "/token/AB/01",
        "/token/unknown",
        "/token/" + "9" * 37,
    ]
    for path in paths:
        hot, plain = client.get(path), connexion_client.get(path)
        assert (hot.status_code, hot.headers["content-type"], hot.content) == (
            plain.status_code,
            plain.headers["content-type"],
            plain.content,
        ), path
    # A GET with a body, as some clients send, with or without a Content-Type: the body is ignored.
    for headers in ({}, {"content-type": "application/json"}, {"content-type": "text/plain"}):
        for path in ("/cs/cs-1/auth", "/token/0102", "/cs/unknown/auth"):
            hot, plain = client.request("GET", path, content=b'{"x": 1}', headers=headers), connexion_client.get(path)
            assert (hot.status_code, hot.headers["content-type"], hot.content) == (
                plain.status_code,
                plain.headers["content-type"],
                plain.content,
            ), (path, headers)
    assert client.get("/cs/cs-1/auth").json()["securityProfile"] == 2
    assert client.get(f"/certificate/{certificate_hash}").status_code == 200
    assert client.get("/token/AB%2F01").json()["uid"] == "AB/01"


# The hot path itself, driven as an ASGI app in front of one that records what reaches it.


class Downstream:
    """The app behind the hot path: answers 599 and remembers each request it got."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: dict[str, Any], _receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def call(app: Any, path: str, *, method: str = "GET", query: bytes = b"", headers: Any = (), **scope: Any) -> Any:
    """Send one request through ``app``; returns the status and body it sent."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    request = {"type": "http", "method": method, "path": path, "query_string": query, "headers": list(headers)}
    asyncio.run(app({**request, **scope}, receive, send))
    return sent[0]["status"], b"".join(message.get("body", b"") for message in sent[1:])


@pytest.fixture
def sqlite_store(make_storage: Any) -> Storage:
    store: Storage = make_storage("sqlite")
    store.charge_stations.put_auth("cs-1", {"security_profile": 0, "invalid_username_allowed": False})
    return store


@pytest.fixture
def downstream() -> Downstream:
    return Downstream()


def hot_paths(downstream: Downstream, **options: Any) -> HotPaths:
    return HotPaths(downstream, routes=hot_routes(load_spec(), handler_name), jsonifier=Jsonifier(), **options)


@pytest.mark.parametrize("headers", [(), [(b"content-length", b"0")]])
def test_a_valid_lookup_is_answered_without_the_app_behind(sqlite_store, downstream, headers):
    """A GET with a valid path, no query and no body is answered by the hot path itself."""
    status, body = call(hot_paths(downstream), "/api/v0/cs/cs-1/auth", headers=headers, state={"storage": sqlite_store})
    assert (status, body) == (200, b'{"securityProfile": 0, "invalidUsernameAllowed": false}\n')
    assert downstream.paths == []


@pytest.mark.parametrize(
    ("path", "request_options"),
    [
        ("/api/v0/cs/cs-1/auth", {"method": "HEAD"}),
        ("/api/v0/cs/cs-1/auth", {"method": "POST"}),
        ("/api/v0/cs/cs-1/auth", {"query": b"verbose=1"}),
        ("/api/v0/cs/cs-1/auth", {"headers": [(b"content-length", b"2")]}),
        ("/api/v0/cs/cs-1/auth", {"headers": [(b"transfer-encoding", b"chunked")]}),
        ("/api/v0/cs/cs-1/auth", {"root_path": "/behind-a-proxy"}),
        ("/api/v0/cs/" + "x" * 29 + "/auth", {}),
        ("/api/v0/cs/cs-1/auth/", {}),
        ("/api/v0/cs/cs-1/reconfigure", {}),
        ("/api/v0/certificate/" + "A" * 42, {}),
        ("/api/v0/token/", {}),
        ("/api/v0/token/caf\u00e9", {}),
    ],
)
def test_what_the_hot_path_cannot_serve_goes_on(sqlite_store, downstream, path, request_options):
    """Other methods, queries, bodies, a root path, invalid values and other paths reach the app behind."""
    status, _ = call(hot_paths(downstream), path, state={"storage": sqlite_store}, **request_options)
    assert (status, downstream.paths) == (599, [path])


def test_the_matched_operation_is_recorded_for_the_request_log(sqlite_store, downstream):
    """The hot path names the operation where Connexion's router would, for the log line and the metrics."""
    extensions: dict[str, Any] = {}
    call(hot_paths(downstream), "/api/v0/cs/cs-1/auth", state={"storage": sqlite_store}, extensions=extensions)
    assert extensions["connexion_routing"] == {
        "operation_id": "maeve_api.handlers.charge_stations.lookup_charge_station_auth"
    }


# Operations marked hot that it cannot serve as Connexion would are refused when the app is built.

THING = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


async def lookup_thing(thing_id: str) -> tuple[dict[str, Any], int]:
    return {"name": thing_id} if thing_id != "nameless" else {}, 200


def sync_lookup_thing(thing_id: str) -> tuple[dict[str, Any], int]:
    return {"name": thing_id}, 200


def thing_spec(method: str = "get", **operation: Any) -> dict[str, Any]:
    """A spec with one hot operation on /things/{thingId}, a GET unless ``method`` says otherwise."""
    marked = {
        "operationId": "lookup_thing",
        "x-openapi-router-controller": TEST_CONTROLLER,
        "x-hot-path": True,
        "parameters": [{"name": "thingId", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "the thing", "content": {"application/json": {"schema": THING}}}},
        **operation,
    }
    return {"openapi": "3.0.3", "servers": [{"url": "/v1"}], "paths": {"/things/{thingId}": {method: marked}}}


def with_path(spec: dict[str, Any], template: str, *, path_format: bool = False) -> dict[str, Any]:
    """``spec`` with another, plain operation on ``template``; ``thingId`` a ``format: path`` if asked."""
    operation = copy.deepcopy(spec["paths"]["/things/{thingId}"]["get"])
    del operation["x-hot-path"]
    operation["parameters"] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{(\w+)\}", template)
    ]
    if path_format:
        spec["paths"]["/things/{thingId}"]["get"]["parameters"][0]["schema"]["format"] = "path"
    return {**spec, "paths": {**spec["paths"], template: {"get": operation}}}


def dotted(controller: str, operation_id: str) -> str:
    return f"{controller}.{operation_id}"


@pytest.mark.parametrize(
    ("spec", "refusal"),
    [
        (thing_spec("put"), "only a GET"),
        (thing_spec(requestBody={"content": {}}), "path parameters only"),
        (
            thing_spec(parameters=[{"name": "q", "in": "query", "schema": {"type": "string"}}]),
            "path parameters only",
        ),
        (thing_spec(security=[{"key": []}]), "security"),
        ({**thing_spec(), "security": [{"key": []}]}, "security"),
        (thing_spec(operationId="sync_lookup_thing"), "async def"),
        (with_path(thing_spec(), "/things/special"), "overlaps /things/special"),
        (with_path(thing_spec(), "/{anything}/{thingId}"), "overlaps /{anything}/{thingId}"),
        (with_path(thing_spec(), "/things/{thingId}/parts", path_format=True), "overlaps /things/{thingId}/parts"),
    ],
)
def test_an_operation_it_cannot_serve_faithfully_is_refused(spec, refusal):
    """Marking hot an operation with a body, other parameters, security or a sync handler fails the build."""
    with pytest.raises(HotPathError, match=refusal):
        hot_routes(copy.deepcopy(spec), dotted)


def test_responses_are_validated_when_asked(downstream):
    """With a response validator, a body that breaks its schema raises as Connexion's validation does."""
    routes = hot_routes(thing_spec(), dotted)
    plain = HotPaths(downstream, routes=routes, jsonifier=Jsonifier())
    checked = HotPaths(downstream, routes=routes, jsonifier=Jsonifier(), response_validator=JSONResponseBodyValidator)
    assert call(checked, "/v1/things/t-1") == (200, b'{"name": "t-1"}\n')
    assert call(plain, "/v1/things/nameless") == (200, b"{}\n")
    with pytest.raises(NonConformingResponseBody):
        call(checked, "/v1/things/nameless")
