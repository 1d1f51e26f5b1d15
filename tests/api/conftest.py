"""Fixtures for tests through the real app: one app per session, a fresh store per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest

from maeve_api.settings import Settings
from maeve_api.storage import Storage
from maeve_api.web.app import create_app

API_ENGINES = ["sqlite", "nx27017"]


class _CurrentStorage:
    storage: Storage | None = None

    def __call__(self) -> Storage:
        assert self.storage is not None
        return self.storage


@pytest.fixture(scope="session")
def current_storage() -> _CurrentStorage:
    return _CurrentStorage()


@pytest.fixture(scope="session")
def api_app(current_storage: _CurrentStorage) -> Any:
    # Small body limit so that 413 is cheap to provoke.
    return create_app(Settings(validate_responses=True, max_body_bytes=64 * 1024), storage_factory=current_storage)


@pytest.fixture(params=API_ENGINES)
def store(request: pytest.FixtureRequest, make_storage: Callable[[str], Storage]) -> Storage:
    return make_storage(request.param)


@pytest.fixture
def client(api_app: Any, current_storage: _CurrentStorage, store: Storage) -> Iterator[httpx2.Client]:
    current_storage.storage = store
    with api_app.test_client(base_url="http://testserver/api/v0") as test_client:
        yield test_client


def assert_status(response: httpx2.Response, code: int, *error_parts: str) -> dict[str, str]:
    """The response is a ``Status`` body for ``code`` whose ``error`` mentions every part."""
    assert response.status_code == code, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) <= {"status", "error"}
    assert body["status"]
    for part in error_parts:
        assert part in body["error"], body
    return body


def assert_empty(response: httpx2.Response, code: int) -> None:
    """The response has ``code``, no body and so no Content-Type."""
    assert response.status_code == code, response.text
    assert response.content == b""
    assert "content-type" not in response.headers
