"""The application factory: wires the spec, the handlers, the error mapping and the storage lifespan."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from connexion.jsonifier import Jsonifier
from connexion.middleware import ConnexionMiddleware, MiddlewarePosition
from connexion.middleware.response_validation import ResponseValidationMiddleware
from connexion.middleware.security import SecurityMiddleware
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from connexion.spec import OpenAPISpecification
from starlette.requests import Request
from starlette.responses import Response

from maeve_api.documents import API_SPEC, OCPI_SPEC, SPEC_DIR, document_json, load_spec
from maeve_api.settings import Settings
from maeve_api.storage import Storage, open_storage
from maeve_api.web.asyncapp import App
from maeve_api.web.hot_paths import HotPaths, hot_routes
from maeve_api.web.metrics import InstrumentedStorage, add_metrics
from maeve_api.web.middleware import RequestGuard
from maeve_api.web.probes import add_probes
from maeve_api.web.problems import AllowedMethods, register_error_handlers
from maeve_api.web.request_log import OperationFinder, RequestLog
from maeve_api.web.validation import VALIDATORS


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def handler_name(controller: str, operation_id: str) -> str:
    """The dotted name of the function serving ``operation_id``: its snake_case form in ``controller``."""
    return f"{controller}.{_snake_case(operation_id)}"


class SnakeCaseResolver(Resolver):
    """Finds ``registerChargeStation`` as ``register_charge_station`` in the path's router controller."""

    def resolve_operation_id(self, operation: Any) -> str:
        return handler_name(operation.router_controller, operation.operation_id)


def operation_routes(spec: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Each operation's handler name (the router's id for it) mapped to its operationId and path template."""
    base_path = spec["servers"][0]["url"].rstrip("/")
    return {
        handler_name(operation["x-openapi-router-controller"], operation["operationId"]): (
            operation["operationId"],
            base_path + template,
        )
        for template, item in spec["paths"].items()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }


#: The path at which the reference implementation serves its document, beside ``/api/v0/openapi.json``.
REFERENCE_SPEC_PATH = "/api/openapi.json"


def _check_each_document_once() -> None:
    """Make Connexion check each distinct document against the OpenAPI schema once per process.

    Connexion checks a document every time it builds a Specification of it: for each app, and again for each
    GET of ``openapi.json`` (which clones it), about 25 ms for each of ours. A document that passed is not checked
    again; any other, a changed one included, still is, and still fails as before.
    spec-first/connexion#1260 asks for a way to hand Connexion a Specification built once instead.
    """
    check = OpenAPISpecification._validate_spec.__func__  # type: ignore[attr-defined]
    passed: set[bytes] = set()

    def check_once(cls: type[OpenAPISpecification], spec: dict[str, Any]) -> None:
        key = hashlib.blake2b(json.dumps(spec, sort_keys=True, default=str).encode(), digest_size=16).digest()
        if key not in passed:
            check(cls, spec)
            passed.add(key)

    OpenAPISpecification._validate_spec = classmethod(check_once)  # type: ignore[method-assign,assignment]


_check_each_document_once()


def _serve_document(body: bytes) -> Callable[[Request], Any]:
    async def document(_request: Request) -> Response:
        return Response(body, 200, media_type="application/json")

    return document


def _lifespan(storage_factory: Callable[[], Storage], settings: Settings) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[dict[str, Any]]:
        # Opened per worker, after gunicorn forks: pymongo clients are not fork-safe.
        storage = InstrumentedStorage(storage_factory())
        try:
            yield {"storage": storage, "settings": settings}
        finally:
            storage.close()

    return lifespan


def middlewares(settings: Settings) -> list[Any]:
    """Connexion's middleware stack less the layers with nothing to do in this API.

    The spec declares no security scheme, and response validation is off unless asked for;
    each skipped layer would still route every request.
    """
    skipped = {SecurityMiddleware}
    if not settings.validate_responses:
        skipped.add(ResponseValidationMiddleware)
    return [layer for layer in ConnexionMiddleware.default_middlewares if layer not in skipped]


def create_app(settings: Settings, storage_factory: Callable[[], Storage] | None = None) -> App:
    """Build the internal API app for ``settings``; storage opens when the app's lifespan starts.

    ``storage_factory`` replaces opening ``settings.database_url`` (tests give each test its own store).
    """
    spec = load_spec()
    jsonifier = Jsonifier()
    app = App(
        __name__,
        specification_dir=SPEC_DIR,
        jsonifier=jsonifier,
        lifespan=_lifespan(storage_factory or (lambda: open_storage(settings.database_url)), settings),
        middlewares=middlewares(settings),
        pythonic_params=True,
    )
    app.add_api(
        spec,
        resolver=SnakeCaseResolver(),
        strict_validation=True,
        validate_responses=settings.validate_responses,
        validator_map=VALIDATORS,
        swagger_ui_options=SwaggerUIOptions(swagger_ui=True, swagger_ui_config={"urls": DOCUMENTS}),
    )
    app.add_middleware(RequestGuard, position=MiddlewarePosition.BEFORE_SWAGGER, max_body_bytes=settings.max_body_bytes)
    # Inside the guard and the error mapping, so that what it refuses or raises is answered as elsewhere.
    app.add_middleware(
        HotPaths,
        position=MiddlewarePosition.BEFORE_SWAGGER,
        routes=hot_routes(spec, handler_name),
        jsonifier=jsonifier,
        response_validator=VALIDATORS["response"]["application/json"] if settings.validate_responses else None,
    )
    # Outside the error mapping, so that error responses are logged and counted too.
    app.add_middleware(
        RequestLog,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        listener="api",
        operations=operation_routes(spec),
        finder=OperationFinder(spec),
    )
    base_path = spec["servers"][0]["url"]
    register_error_handlers(app, AllowedMethods(base_path, spec["paths"]))
    app.add_url_rule(REFERENCE_SPEC_PATH, "reference_spec", _serve_document(document_json(API_SPEC)), methods=["GET"])
    add_probes(app)
    add_metrics(app)
    add_ocpi_document(app, settings)
    return app


#: The documents Swagger UI (``/api/v0/ui/``) offers: ours, and the OCPI listener's, which partners are not shown.
OCPI_DOCUMENT_PATH = "/ocpi/openapi.json"
DOCUMENTS = [
    {"name": "Internal API", "url": "/api/v0/openapi.json"},
    {"name": "OCPI 2.2.1 listener", "url": OCPI_DOCUMENT_PATH},
]


def add_ocpi_document(app: App, settings: Settings) -> None:
    """Serve the OCPI listener's document on this (internal) listener, its server being our external OCPI URL."""
    document = _serve_document(document_json(OCPI_SPEC, settings.ocpi_external_url))
    app.add_url_rule(OCPI_DOCUMENT_PATH, "ocpi_document", document, methods=["GET"])
