"""Access from the OCPI handlers to the caller, the settings and the storage of this worker."""

from __future__ import annotations

from typing import Any

from connexion import context, request

from maeve_api.settings import Settings


def caller() -> dict[str, Any]:
    """Who is calling, as the security check found it: ``{"token", "party"}`` or ``{"token", "registration"}``."""
    found: dict[str, Any] = context.context["token_info"]
    return found


def settings() -> Settings:
    """The settings the OCPI app was built with."""
    configured: Settings = request.state.settings
    return configured


def correlation_id() -> str | None:
    """The X-Correlation-ID of the request, kept for the calls made on its behalf."""
    found: str | None = getattr(request.state, "correlation_id", None)
    return found
