"""The app decorates each handler once, not on every request, and still serves each request on its own."""

from __future__ import annotations

from unittest import mock

from connexion.apps import asynchronous


def test_a_handler_is_decorated_once_for_all_its_requests(api_app, client):
    """Three lookups of different stations build the handler's decorator chain once and answer each correctly."""
    client.post("/cs/a1", json={"securityProfile": 1})
    client.post("/cs/a2", json={"securityProfile": 2})
    with mock.patch.object(asynchronous, "StarletteDecorator", wraps=asynchronous.StarletteDecorator) as decorator:
        answers = [client.get(f"/cs/{cs_id}/auth") for cs_id in ("a1", "a2", "a1")]
    assert [answer.json()["securityProfile"] for answer in answers] == [1, 2, 1]
    assert decorator.call_count <= 1
