"""The one mapping from every error on the OCPI listener to an OCPI envelope with the fitting HTTP status."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from connexion.apps.abstract import AbstractApp
from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from maeve_api.errors import InvalidInput, MissingEndpoints, PartnerFailed
from maeve_api.ocpi.envelope import envelope
from maeve_api.ocpi.errors import (
    IdentityRefused,
    OcpiError,
    OutOfScope,
    RegistrationState,
    UnknownLocation,
    UnknownToken,
)
from maeve_api.problems import AllowedMethods, log_error
from maeve_api.storage import Conflict, NotFound, StorageUnavailable

logger = logging.getLogger(__name__)

_OCPI_HTTP: dict[type[OcpiError], int] = {
    UnknownLocation: 404,
    UnknownToken: 404,
    RegistrationState: 405,
    IdentityRefused: 409,
    OutOfScope: 403,
}
_NOT_FOUND_CODES = {"location": 2003, "token": 2004}


def envelope_response(
    http_status: int, status_code: int, message: str, headers: dict[str, str] | None = None
) -> ConnexionResponse:
    """An OCPI envelope without data, as a JSON response with ``http_status``."""
    return ConnexionResponse(
        status_code=http_status,
        mimetype="application/json",
        content_type="application/json",
        body=json.dumps(envelope(None, status_code, message), ensure_ascii=False).encode(),
        headers=headers or {},
    )


def _http_error(request: ConnexionRequest, exc: Exception, allowed: AllowedMethods) -> ConnexionResponse:
    assert isinstance(exc, HTTPException)
    code = exc.status_code
    headers = dict(exc.headers or {})
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else HTTPStatus(code).phrase
    if code == 404:
        detail = f"no resource at {request.url.path}"
    elif code == 401:
        detail = (
            "missing Authorization header; send Token <base64 of your credentials token>"
            if "No authorization" in detail
            else "unknown token, or a token A that may reach only versions, version details and credentials"
        )
    elif code == 405:
        allow = allowed.for_path(request.url.path)
        if allow:
            headers["Allow"] = allow
        detail = f"{request.method} is not allowed on {request.url.path}"
    log_error(code, exc, logger)
    return envelope_response(code, 2001 if code == 400 else 2000, detail, headers)


def _ocpi_error(request: ConnexionRequest, exc: Exception, allowed: AllowedMethods) -> ConnexionResponse:
    assert isinstance(exc, OcpiError)
    code = next((http for cls, http in _OCPI_HTTP.items() if isinstance(exc, cls)), 400)
    allow = None
    if code == 405:
        allow = getattr(exc, "allow", None) or allowed.for_path(request.url.path)
    log_error(code, exc, logger)
    return envelope_response(code, exc.status_code, str(exc), {"Allow": allow} if allow else None)


def _invalid(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    log_error(400, exc, logger)
    return envelope_response(400, 2001, str(exc))


def _partner(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    log_error(502, exc, logger)
    return envelope_response(502, 3003 if isinstance(exc, MissingEndpoints) else 3001, str(exc))


def _not_found(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, NotFound)
    log_error(404, exc, logger)
    return envelope_response(404, _NOT_FOUND_CODES.get(exc.kind, 2000), str(exc))


def _conflict(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, Conflict)
    log_error(400, exc, logger)
    return envelope_response(400, 2001, f"{exc.kind} {exc.key} {exc.reason}")


def _unavailable(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    log_error(503, exc, logger)
    return envelope_response(503, 3000, "the data store is unavailable, try again shortly", {"Retry-After": "1"})


def _undecodable(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    log_error(400, exc, logger)
    return envelope_response(400, 2001, "the request body is not valid UTF-8")


def _unexpected(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    logger.error("unhandled error", exc_info=exc)
    return envelope_response(500, 3000, "an unexpected error occurred")


def register_ocpi_error_handlers(app: AbstractApp, allowed: AllowedMethods) -> None:
    """Route every error the OCPI app can raise to an OCPI envelope; 405s list the spec's methods in ``Allow``."""

    def http_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        return _http_error(request, exc, allowed)

    def ocpi_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        return _ocpi_error(request, exc, allowed)

    handlers: Iterable[tuple[type[Exception], Any]] = (
        (ProblemException, http_error),
        (HTTPException, http_error),
        (OcpiError, ocpi_error),
        (InvalidInput, _invalid),
        (PartnerFailed, _partner),
        (NotFound, _not_found),
        (Conflict, _conflict),
        (StorageUnavailable, _unavailable),
        (UnicodeDecodeError, _undecodable),
        (Exception, _unexpected),
    )
    for exc_class, handler in handlers:
        app.add_error_handler(exc_class, handler)
