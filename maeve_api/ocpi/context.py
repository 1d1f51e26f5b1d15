"""Access from the OCPI handlers to the caller and the correlation id of the request."""

from __future__ import annotations

from typing import Any

from connexion import context, request


def caller() -> dict[str, Any]:
    """Who is calling, as the security check found it: ``{"token", "party"}`` or ``{"token", "registration"}``."""
    found: dict[str, Any] = context.context["token_info"]
    return found


def correlation_id() -> str | None:
    """The X-Correlation-ID of the request, kept for the calls made on its behalf."""
    found: str | None = getattr(request.state, "correlation_id", None)
    return found
