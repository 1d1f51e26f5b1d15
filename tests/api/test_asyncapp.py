"""The app decorates each handler once, not on every request, and still serves each request on its own."""

from __future__ import annotations

from unittest import mock

from connexion.apps import asynchronous

from tests.api.test_tokens import make_token


def test_a_handler_is_decorated_once_for_all_its_requests(api_app, client):
    """Three token list pages build the handler's decorator chain once and answer each correctly."""
    for uid in ("A1", "A2"):
        client.post("/token", json=make_token(uid=uid))
    with mock.patch.object(asynchronous, "StarletteDecorator", wraps=asynchronous.StarletteDecorator) as decorator:
        answers = [client.get("/token", params={"offset": offset, "limit": 1}) for offset in (0, 1, 0)]
    assert [[token["uid"] for token in answer.json()] for answer in answers] == [["A1"], ["A2"], ["A1"]]
    assert decorator.call_count <= 1
