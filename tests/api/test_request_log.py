"""Request ids, the one JSON log line per request, and secrets kept out of every log line."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import logging.config
import re
from collections.abc import Iterator
from typing import Any

import pytest

from maeve_api.web.request_log import logging_config
from tests.factories import make_certificate_pem


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Logging configured as in production (at debug), writing its JSON lines into a buffer."""
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, root.handlers[:]
    config = logging_config("debug")
    logging.config.dictConfig(config)
    output = io.StringIO()
    for handler in root.handlers:
        handler.setStream(output)  # type: ignore[attr-defined]
    yield output
    for name in config["loggers"]:
        logger = logging.getLogger(name)
        logger.handlers, logger.propagate = [], True
        logger.setLevel(logging.NOTSET)
    root.handlers = saved_handlers
    root.setLevel(saved_level)


def request_lines(output: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in output.getvalue().splitlines()]
    return [line for line in lines if line["logger"] == "maeve_api.requests"]


def test_a_given_request_id_is_echoed(client):
    """An X-Request-ID sent by the client comes back unchanged."""
    response = client.get("/cs/cs001/auth", headers={"X-Request-ID": "gw-42.a:b"})
    assert response.headers["x-request-id"] == "gw-42.a:b"


@pytest.mark.parametrize("given", [None, b"has space", b"x" * 129, "naïve".encode("latin-1")])
def test_a_missing_or_unusable_request_id_is_replaced(client, given):
    """Without a plain X-Request-ID of at most 128 characters, the response carries a fresh one."""
    headers = {"X-Request-ID": given} if given else {}
    response = client.get("/cs/cs001/auth", headers=headers)
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_each_request_is_logged_once_with_its_route_and_outcome(client, log_output):
    """One JSON line per request: method, route template, operationId, status, duration and request id."""
    client.post("/cs/cs001", json={"securityProfile": 0})
    response = client.get("/cs/cs001/auth", headers={"X-Request-ID": "abc"})
    client.get("/nothing")
    lines = request_lines(log_output)
    assert [(line["method"], line["route"], line["operation"], line["status"]) for line in lines] == [
        ("POST", "/api/v0/cs/{csId}", "registerChargeStation", 201),
        ("GET", "/api/v0/cs/{csId}/auth", "lookupChargeStationAuth", 200),
        ("GET", "-", "other", 404),
    ]
    assert lines[1]["request_id"] == "abc" == response.headers["x-request-id"]
    assert all(line["duration_ms"] >= 0 and line["level"] == "INFO" and line["timestamp"] for line in lines)


def test_no_secret_reaches_a_log_line(client, log_output):
    """Password hashes, OCPI tokens and certificates sent in good and bad requests never appear in the logs."""
    password_hash = base64.b64encode(hashlib.sha256(b"s3cret").digest()).decode()
    ocpi_token = "ocpi-token-a-7f3c2e"
    certificate = make_certificate_pem("logged")
    body = certificate.split("-----")[2].strip().replace("\n", "")
    client.post("/cs/cs001", json={"securityProfile": 1, "base64SHA256Password": password_hash})
    client.post("/cs/cs002", json={"securityProfile": 9, "base64SHA256Password": password_hash})
    client.post("/cs/cs003", json={"securityProfile": 1, "base64SHA256Password": password_hash.rstrip("=")})
    client.post("/register", json={"token": ocpi_token})
    client.post("/register", json={"token": ocpi_token, "status": "registered"})
    client.post("/certificate", json={"certificate": certificate})
    client.post("/certificate", json={"certificate": certificate.replace("MII", "MI!")})
    client.post("/cs/cs001/certificates", json={"certificates": [{"type": "V2G", "certificate": certificate[:200]}]})
    text = log_output.getvalue()
    assert len(request_lines(log_output)) == 8
    for secret in (password_hash, password_hash.rstrip("="), ocpi_token, body[:40], body[-40:]):
        assert secret not in text
