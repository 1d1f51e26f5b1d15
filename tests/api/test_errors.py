"""Every non-2xx the app can give is a Status body; the spec and health are served."""

from __future__ import annotations

import pytest

from tests.api.conftest import assert_status


def test_unknown_path_is_404(client):
    """A path the spec does not know is a 404 Status that does not repeat the path."""
    body = assert_status(client.get("/nothing/here"), 404, "path: no resource is served at this path")
    assert "nothing" not in body["error"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/token", "GET, HEAD, POST"),
        ("PATCH", "/certificate/" + "A" * 43, "DELETE, GET, HEAD"),
        ("DELETE", "/cs/cs001", "GET, HEAD, POST"),
        ("DELETE", "/cs/cs001/auth", "GET, HEAD"),
    ],
)
def test_wrong_method_is_405_with_the_complete_allow_header(client, method, path, allow):
    """A method the path does not offer is 405 whose Allow lists every method the spec gives the path."""
    response = client.request(method, path)
    assert_status(response, 405, method)
    assert response.headers["allow"] == allow


def test_oversized_body_is_413(client):
    """A body over the configured limit is refused before it is read."""
    response = client.post("/cs/cs001/reconfigure", json={"a": "x" * 70_000})
    assert_status(response, 413, "body: must be at most 65536 bytes")


def test_oversized_chunked_body_is_413(client):
    """A streamed body without Content-Length is counted as it arrives."""

    def chunks():
        for _ in range(100):
            yield b"x" * 1024

    response = client.post("/cs/cs001/reconfigure", content=chunks(), headers={"content-type": "application/json"})
    assert_status(response, 413)


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
def test_wrong_content_type_is_415(client, content_type):
    """A body that is not declared application/json is 415."""
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/cs/cs001", content=b'{"securityProfile": 0}', headers=headers)
    assert response.status_code in (400, 415)
    assert_status(response, response.status_code)


@pytest.mark.parametrize(
    ("content", "mentions"),
    [
        (b'{"securityProfile": 0', ""),
        (b"", ""),
        (b"[1, 2]", "object"),
        (b'"text"', "object"),
        (b"null", ""),
        (b'{"securityProfile": 0, "base64SHA256Password": "\xff\xfe"}', "UTF-8"),
        (b'{"securityProfile": 1e400}', ""),
        (b'{"securityProfile": 1' + b"0" * 400 + b"}", "at most 2"),
        (b'{"securityProfile": NaN}', "NaN"),
        (b'{"securityProfile": -Infinity}', "Infinity"),
        (b'{"securityProfile": 0, "base64SHA256Password": "\\ud800"}', "surrogate"),
        (b'\xef\xbb\xbf{"securityProfile": 0}', "BOM"),
        (b"[" * 10_000 + b"]" * 10_000, "nested too deeply"),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "nested too deeply"),
    ],
)
def test_malformed_bodies_are_400(client, content, mentions):
    """Truncated, empty, non-object, invalid UTF-8, huge-number and deeply nested bodies are 400."""
    response = client.post("/cs/cs001", content=content, headers={"content-type": "application/json"})
    assert_status(response, 400, mentions)
    assert client.get("/cs/cs001/auth").status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/cs/a%0Ab/auth"), ("GET", "/cs/%00/auth"), ("GET", "/token/%7F"), ("POST", "/cs/a%09b")],
)
def test_control_characters_in_the_path_are_404(client, method, path):
    """Control characters in a path are a 404 Status, never a 500."""
    assert_status(client.request(method, path, json={"securityProfile": 0}), 404)


def test_the_spec_is_served(client):
    """The OpenAPI document is served as JSON at /api/v0/openapi.json."""
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.0")
    operation_ids = {
        op["operationId"] for item in spec["paths"].values() for op in item.values() if "operationId" in op
    }
    assert {"lookupLocation", "listParties"} <= operation_ids


def test_swagger_ui_is_served(client):
    """Swagger UI is served under /api/v0/ui/."""
    response = client.get("/ui/")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()


def test_the_ocpi_document_is_served_here_and_offered_in_swagger_ui(client):
    """The OCPI listener's document is served by the internal listener, its server our external OCPI URL, and
    Swagger UI offers it beside ours."""
    document = client.get("http://testserver/ocpi/openapi.json")
    assert document.status_code == 200
    assert document.json()["servers"] == [{"url": "http://localhost:9411/ocpi"}]
    paths = document.json()["paths"].values()
    operations = {op.get("operationId") for item in paths for op in item.values() if isinstance(op, dict)}
    assert "postCredentials" in operations
    config = client.get("/ui/swagger-ui-config.json").json()
    assert {"name": "OCPI 2.2.1 listener", "url": "/ocpi/openapi.json"} in config["urls"]
