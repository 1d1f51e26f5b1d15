"""The one mapping from every error to the seed's ``Status`` body, registered by the app factory."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from connexion.apps.abstract import AbstractApp
from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from maeve_api.domain.errors import Conflict, DomainError, InvalidInput, NotSupported, PartnerFailed
from maeve_api.storage import NotFound, StorageUnavailable, TooLarge
from maeve_api.web.middleware import RefusedRequest

logger = logging.getLogger(__name__)

_DOMAIN_STATUS: dict[type[DomainError], int] = {
    InvalidInput: 400,
    Conflict: 409,
    NotSupported: 501,
    PartnerFailed: 502,
}


def status_body(code: int, error: str | None = None) -> bytes:
    """The JSON ``Status`` body: the reason phrase of ``code`` and, when given, what was wrong."""
    body: dict[str, str] = {"status": HTTPStatus(code).phrase}
    if error:
        body["error"] = error
    return json.dumps(body, ensure_ascii=False).encode()


def status_response(code: int, error: str | None = None, headers: dict[str, str] | None = None) -> ConnexionResponse:
    """A ``Status`` JSON response for ``code``."""
    return ConnexionResponse(
        status_code=code,
        mimetype="application/json",
        content_type="application/json",
        body=status_body(code, error),
        headers=headers or {},
    )


def log_error(code: int, message: str, log: logging.Logger = logger) -> None:
    """Log an error answered with ``code`` and the ``message`` sent: a 4xx as a warning, a 5xx as an error.

    The message is the one the client got, which names fields and rules and never a value sent or a
    path, so neither reaches the log; there is no traceback.
    """
    if code < 500:
        log.warning("%d %s", code, message)
    else:
        log.error("%d %s", code, message)


def not_found_message(kind: str) -> str:
    """The 404 text for a record of ``kind`` that does not exist; the key asked for is not repeated."""
    return f"{kind}: not found"


#: The text of a 404 for a path that no operation serves; the path itself is not repeated.
NO_RESOURCE = "path: no resource is served at this path"


def http_error_detail(code: int, detail: str | None, method: str, allow: str | None) -> str | None:
    """The ``field: rule`` text of an HTTP error raised by routing or Connexion, without any value sent."""
    if code == 405:
        return f"method: {method} is not allowed here; allowed: {allow or 'none'}"
    if code == 404:
        return NO_RESOURCE
    if code == 415:
        return "Content-Type: must be application/json"
    return detail


class AllowedMethods:
    """The methods the spec declares for each path, to answer 405 with a complete ``Allow``.

    Connexion's router knows one operation per route and would list only its method.
    """

    def __init__(self, base_path: str, paths: dict[str, Any]) -> None:
        self._routes: list[tuple[re.Pattern[str], str]] = []
        for template, item in paths.items():
            methods = {m.upper() for m in item if m in ("get", "put", "post", "delete", "patch", "head", "options")}
            if "GET" in methods:
                methods.add("HEAD")
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(base_path + template))
            self._routes.append((re.compile(pattern + "$"), ", ".join(sorted(methods))))

    def for_path(self, path: str) -> str | None:
        """The ``Allow`` value for a request path, or None if the spec has no such path."""
        for pattern, allow in self._routes:
            if pattern.match(path):
                return allow
        return None


def _http_error(request: ConnexionRequest, exc: Exception, allowed: AllowedMethods) -> ConnexionResponse:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    detail: str | None = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 405:
        allow = allowed.for_path(request.url.path)
        if allow:
            headers["Allow"] = allow
    if not isinstance(exc, RefusedRequest):
        # The router's and Connexion's texts are boilerplate or repeat what was sent.
        detail = http_error_detail(exc.status_code, detail, request.method, headers.get("Allow"))
    log_error(exc.status_code, detail or HTTPStatus(exc.status_code).phrase)
    return status_response(exc.status_code, detail, headers)


def _domain_error(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    code = next(code for cls, code in _DOMAIN_STATUS.items() if isinstance(exc, cls))
    log_error(code, str(exc))
    return status_response(code, str(exc))


def _not_found(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, NotFound)
    message = not_found_message(exc.kind)
    log_error(404, message)
    return status_response(404, message)


def _unavailable(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    message = "the data store is unavailable, try again shortly"
    log_error(503, f"{message} ({type(exc).__name__}: {exc})")
    return status_response(503, message, {"Retry-After": "1"})


def _too_large(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    message = "body: the record would be larger than the data store keeps in one document"
    log_error(413, f"{message} ({exc})")
    return status_response(413, message)


def _undecodable(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    message = "body: is not valid UTF-8"
    log_error(400, message)
    return status_response(400, message)


def _unexpected(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    logger.error("unhandled error", exc_info=exc)
    return status_response(500, "an unexpected error occurred")


def register_error_handlers(app: AbstractApp, allowed: AllowedMethods) -> None:
    """Route every error the app can raise to a ``Status`` response."""

    def http_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        return _http_error(request, exc, allowed)

    handlers: Iterable[tuple[type[Exception], Any]] = (
        (ProblemException, http_error),
        (HTTPException, http_error),
        (DomainError, _domain_error),
        (NotFound, _not_found),
        (StorageUnavailable, _unavailable),
        (TooLarge, _too_large),
        (UnicodeDecodeError, _undecodable),
        (Exception, _unexpected),
    )
    for exc_class, handler in handlers:
        app.add_error_handler(exc_class, handler)
