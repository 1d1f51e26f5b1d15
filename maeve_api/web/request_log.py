"""One JSON log line and the metrics of every request, under an X-Request-ID taken from the request or made."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping
from contextvars import ContextVar
from time import perf_counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maeve_api.web.metrics import observe_request

REQUEST_ID_HEADER = b"x-request-id"
# A client's id is kept only if it is short and plain enough to log and echo as it is.
_ACCEPTED_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:+=/-]{1,128}")
#: Paths served beside the spec whose names are their own route and operation.
_PROBES = ("/health", "/ready", "/metrics")

request_id: ContextVar[str] = ContextVar("request_id", default="-")

log = logging.getLogger("maeve_api.requests")


class RequestIdFilter(logging.Filter):
    """Adds the id of the request being served (or "-") to every log record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class NoColour(logging.Filter):
    """Drops uvicorn's ``color_message``, a copy of the message with ANSI colour codes, from every record.

    The JSON formatter writes every extra attribute of a record, and terminal escapes have no place in it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("color_message", None)
        return True


class ClosedSocketNoise(logging.Filter):
    """Drops gunicorn's "Error while closing socket [Errno 9]" from a worker's clean shutdown.

    On shutdown uvicorn's server closes the listening sockets it served through asyncio, then calls
    ``close()`` on gunicorn's socket wrappers too (uvicorn.Server.shutdown), whose descriptors are then
    already closed: gunicorn's ``BaseSocket.close`` logs the EBADF it gets. Any other close error is kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.msg == "Error while closing socket %s" and any("[Errno 9]" in str(arg) for arg in record.args or ())
        )


def logging_config(level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` writing every record as one JSON line on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": RequestIdFilter},
            "no_colour": {"()": NoColour},
            "closed_socket": {"()": ClosedSocketNoise},
        },
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(levelname)s %(name)s %(message)s",
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": True,
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
                "filters": ["request_id", "no_colour"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {
                "level": level.upper(),
                "handlers": ["stderr"],
                "propagate": False,
                "filters": ["closed_socket"],
            },
            # Every request is logged once, by RequestLog.
            "gunicorn.access": {"handlers": [], "propagate": False},
            "uvicorn.access": {"handlers": [], "propagate": False},
            # pymongo's debug records carry whole commands: documents, password hashes included.
            "pymongo": {"level": "WARNING"},
        },
    }


#: What the log and metrics name a request that matched no operation and no probe.
UNMATCHED = ("other", "-")


class OperationFinder:
    """The spec's operation for a method and path, for requests refused before Connexion routed them.

    A body over the limit or without a Content-Type is refused ahead of routing; its request still
    belongs to the operation its method and path name.
    """

    _METHODS = ("get", "put", "post", "delete", "patch")

    def __init__(self, spec: Mapping[str, Any]) -> None:
        base_path = spec["servers"][0]["url"].rstrip("/")
        self._routes: list[tuple[str, re.Pattern[str], tuple[str, str]]] = []
        for template, item in spec["paths"].items():
            for method, operation in item.items():
                if method in self._METHODS and isinstance(operation, dict) and "operationId" in operation:
                    pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(base_path + template))
                    route = (operation["operationId"], base_path + template)
                    self._routes.append((method.upper(), re.compile(pattern), route))

    def find(self, method: str, path: str) -> tuple[str, str] | None:
        """(operationId, path template) of the first operation of ``method`` whose template matches ``path``."""
        for route_method, pattern, route in self._routes:
            if route_method == method and pattern.fullmatch(path):
                return route
        return None


def _route(
    scope: Scope, operations: Mapping[str, tuple[str, str]], finder: OperationFinder | None = None
) -> tuple[str, str]:
    """The (operationId, path template) the router matched, or the probe's, or the spec's, or UNMATCHED."""
    routing = scope.get("extensions", {}).get("connexion_routing", {})
    matched = operations.get(routing.get("operation_id") or "")
    if matched:
        return matched
    path: str = scope["path"]
    if path in _PROBES:
        return (path[1:], path)
    return (finder.find(scope["method"], path) if finder else None) or UNMATCHED


class RequestLog:
    """ASGI middleware: sets and echoes X-Request-ID, then logs and counts the request once it is answered.

    The line names the route template, never the path, the query or the body, so that ids and
    secrets sent by clients stay out of the log.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        listener: str,
        operations: Mapping[str, tuple[str, str]],
        finder: OperationFinder | None = None,
    ) -> None:
        """``operations`` maps the router's id of each operation to its operationId and path template;
        ``finder`` names the operation of a request refused before routing."""
        self.app = app
        self.listener = listener
        self.operations = operations
        self.finder = finder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == REQUEST_ID_HEADER), b"")
        current = given.decode() if _ACCEPTED_REQUEST_ID.fullmatch(given) else secrets.token_hex(16)
        reset = request_id.set(current)
        status = 500  # if nothing is sent, the server answers 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                if not any(name.lower() == REQUEST_ID_HEADER for name, _ in headers):
                    headers.append((REQUEST_ID_HEADER, current.encode()))
                message["headers"] = headers
            await send(message)

        # The router records the operation in a shallow copy of the scope; a shared dict carries it back.
        scope.setdefault("extensions", {})
        started = perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = perf_counter() - started
            operation, route = _route(scope, self.operations, self.finder)
            observe_request(self.listener, operation, scope["method"], status, seconds)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "operation": operation,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                },
            )
            request_id.reset(reset)
