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

from maeve_api.domain.errors import InvalidInput, MissingEndpoints, PartnerFailed
from maeve_api.ocpi.envelope import envelope
from maeve_api.ocpi.errors import (
    IdentityRefused,
    OcpiError,
    OutOfScope,
    RegistrationState,
    UnknownLocation,
    UnknownToken,
)
from maeve_api.storage import Conflict, NotFound, StorageUnavailable, TooLarge
from maeve_api.web.middleware import RefusedRequest
from maeve_api.web.problems import AllowedMethods, http_error_detail, log_error, not_found_message

logger = logging.getLogger(__name__)

_OCPI_HTTP: dict[type[OcpiError], int] = {
    UnknownLocation: 404,
    UnknownToken: 404,
    RegistrationState: 405,
    IdentityRefused: 409,
    OutOfScope: 403,
}
_NOT_FOUND_CODES = {"location": 2003, "token": 2004}
#: A 404's text names what is unknown, never the ids asked for.
_UNKNOWN = {UnknownToken: "token_uid: no such token"}
_MISSING_AUTHORIZATION = "Authorization: is required; send Token <base64 of your credentials token>"
_REFUSED_TOKEN = (
    "Authorization: the token is unknown, or is a token A, which reaches only versions, version details and credentials"
)


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
    if code == 401:
        detail = _MISSING_AUTHORIZATION if "No authorization" in detail else _REFUSED_TOKEN
    elif code == 405:
        allow = allowed.for_path(request.url.path)
        if allow:
            headers["Allow"] = allow
    if not isinstance(exc, RefusedRequest) and code != 401:
        detail = http_error_detail(code, detail, request.method, headers.get("Allow")) or detail
    log_error(code, detail, logger)
    return envelope_response(code, 2001 if code == 400 else 2000, detail, headers)


def _ocpi_error(request: ConnexionRequest, exc: Exception, allowed: AllowedMethods) -> ConnexionResponse:
    assert isinstance(exc, OcpiError)
    code = next((http for cls, http in _OCPI_HTTP.items() if isinstance(exc, cls)), 400)
    allow = None
    if code == 405:
        allow = getattr(exc, "allow", None) or allowed.for_path(request.url.path)
    message = next((text for cls, text in _UNKNOWN.items() if isinstance(exc, cls)), str(exc))
    log_error(code, message, logger)
    return envelope_response(code, exc.status_code, message, {"Allow": allow} if allow else None)


def _invalid(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    log_error(400, str(exc), logger)
    return envelope_response(400, 2001, str(exc))


def _partner(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    log_error(502, str(exc), logger)
    return envelope_response(502, 3003 if isinstance(exc, MissingEndpoints) else 3001, str(exc))


def _not_found(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, NotFound)
    message = not_found_message(exc.kind)
    log_error(404, message, logger)
    return envelope_response(404, _NOT_FOUND_CODES.get(exc.kind, 2000), message)


def _conflict(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, Conflict)
    log_error(400, exc, logger)
    # The key is the caller's own uid: named by its field, never repeated.
    return envelope_response(400, 2001, f"uid: the {exc.kind} {exc.reason}")


def _unavailable(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    message = "the data store is unavailable, try again shortly"
    log_error(503, f"{message} ({type(exc).__name__}: {exc})", logger)
    return envelope_response(503, 3000, message, {"Retry-After": "1"})


def _too_large(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    message = "body: the record would be larger than the data store keeps in one document"
    log_error(413, f"{message} ({exc})", logger)
    return envelope_response(413, 2001, message)


def _undecodable(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    message = "body: is not valid UTF-8"
    log_error(400, message, logger)
    return envelope_response(400, 2001, message)


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
        (TooLarge, _too_large),
        (UnicodeDecodeError, _undecodable),
        (Exception, _unexpected),
    )
    for exc_class, handler in handlers:
        app.add_error_handler(exc_class, handler)
