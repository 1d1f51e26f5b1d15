"""The OCPI app factory: our OCPI 2.2.1 modules, spec-first, on their own listener over the same store."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from starlette.concurrency import run_in_threadpool

from maeve_api.documents import OCPI_SPEC, SPEC_DIR, load_spec
from maeve_api.ocpi.middleware import CorrelationHeaders, PartnerRequests, RoutingHeaders
from maeve_api.ocpi.problems import register_ocpi_error_handlers
from maeve_api.ocpi.publisher import Publisher
from maeve_api.ocpi.registration import VERSIONS
from maeve_api.settings import Settings
from maeve_api.storage import Storage, open_storage
from maeve_api.web.app import SnakeCaseResolver, operation_routes
from maeve_api.web.asyncapp import App
from maeve_api.web.metrics import InstrumentedStorage
from maeve_api.web.middleware import RequestGuard
from maeve_api.web.probes import add_probes
from maeve_api.web.problems import AllowedMethods
from maeve_api.web.request_log import OperationFinder, RequestLog
from maeve_api.web.validation import VALIDATORS


def _lifespan(settings: Settings, storage_factory: Callable[[], Storage], publish: bool) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[dict[str, Any]]:
        # Opened per worker, after gunicorn forks: pymongo clients are not fork-safe.
        storage = InstrumentedStorage(storage_factory())
        publisher = Publisher(storage, settings)
        if publish:
            publisher.start()
        try:
            yield {"storage": storage, "settings": settings, "publisher": publisher}
        finally:
            # Waits for a push in flight, off the event loop.
            await run_in_threadpool(publisher.stop)
            storage.close()

    return lifespan


def create_ocpi_app(
    settings: Settings, storage_factory: Callable[[], Storage] | None = None, publish: bool = True
) -> App:
    """Build the OCPI app for ``settings``; storage opens, and location pushes start, with the app's lifespan.

    ``storage_factory`` replaces opening ``settings.database_url``; ``publish=False`` leaves pushes queued.
    """
    app = App(
        __name__,
        specification_dir=SPEC_DIR,
        lifespan=_lifespan(settings, storage_factory or (lambda: open_storage(settings.database_url)), publish),
        pythonic_params=True,
    )
    spec = load_spec(OCPI_SPEC)
    app.add_api(
        spec,
        resolver=SnakeCaseResolver(),
        strict_validation=True,
        validate_responses=settings.validate_responses,
        validator_map=VALIDATORS,
        # The document and its UI are served by the internal listener (maeve_api.web.app), not to partners.
        swagger_ui_options=SwaggerUIOptions(serve_spec=False, swagger_ui=False),
    )
    app.add_middleware(RequestGuard, position=MiddlewarePosition.BEFORE_SWAGGER, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(PartnerRequests, position=MiddlewarePosition.BEFORE_ROUTING, versions=VERSIONS)
    # Outside the error mapping, so that error responses carry the ids and are logged and counted too.
    app.add_middleware(CorrelationHeaders, position=MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(
        RoutingHeaders,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        country_code=settings.ocpi_country_code,
        party_id=settings.ocpi_party_id,
    )
    app.add_middleware(
        RequestLog,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        listener="ocpi",
        operations=operation_routes(spec),
        finder=OperationFinder(spec),
    )
    register_ocpi_error_handlers(app, AllowedMethods(spec["servers"][0]["url"], spec["paths"]))
    # Partners get liveness only: readiness and metrics describe the deployment, for the internal listener.
    add_probes(app, readiness=False)
    return app
