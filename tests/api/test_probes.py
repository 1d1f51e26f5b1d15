"""/health and /ready, and how the API answers while the store is down and after it is back."""

from __future__ import annotations

import time
from pathlib import Path

from maeve_api.settings import Settings
from maeve_api.storage.sqlite import SqliteStorage
from maeve_api.web.app import create_app
from tests.api.conftest import assert_status
from tests.conftest import free_port, start_nx, stop_process


def test_health_answers_200(client):
    """/health answers 200 while the process is up."""
    response = client.get("http://testserver/health")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "OK"}


def test_ready_answers_200_while_the_store_answers(client):
    """/ready answers 200 when the store answers."""
    response = client.get("http://testserver/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "OK"}


def test_ready_is_503_when_the_store_is_closed(api_app, current_storage, tmp_path: Path):
    """A store that cannot be used makes /ready a 503 Status."""
    closed = SqliteStorage(tmp_path / "closed.db")
    closed.close()
    current_storage.storage = closed
    with api_app.test_client() as client:
        assert_status(client.get("/ready"), 503, "unavailable")


def test_a_database_that_goes_down_gives_503_fast_and_service_resumes(tmp_path: Path):
    """With MongoDB down, requests and /ready answer 503 within 3 s; once it is back, service resumes."""
    port = free_port()
    server, uri = start_nx(tmp_path, port)
    app = create_app(Settings(database_url=f"{uri}/maeve"))
    try:
        with app.test_client(base_url="http://testserver/api/v0") as client:
            assert client.post("/cs/cs001", json={"securityProfile": 0}).status_code == 201
            stop_process(server)

            for path in ("/cs/cs001/auth", "http://testserver/ready"):
                started = time.monotonic()
                response = client.get(path)
                elapsed = time.monotonic() - started
                assert_status(response, 503, "unavailable")
                assert elapsed < 3.0, f"{path} took {elapsed:.2f} s"

            server, _ = start_nx(tmp_path, port)  # in memory: the restarted server is empty
            assert client.get("http://testserver/ready").status_code == 200
            assert client.post("/cs/cs002", json={"securityProfile": 0}).status_code == 201
            assert client.get("/cs/cs002/auth").status_code == 200
    finally:
        stop_process(server)
