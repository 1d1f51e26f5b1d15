"""Compiled routes for the spec's hot lookups: a valid GET is answered without Connexion's per-request layers.

An operation marked ``x-hot-path: true`` in the spec is served here when the request is one its
spec accepts as it is: a GET with no query string and no body, whose path parameters pass their
schemas. Everything else, including every request that would be refused, goes on to Connexion, which
answers it as it always does, with the same error messages. The route, the parameter schemas and the
handler all come from the spec, and the handler is the same ``async def`` function Connexion calls.

Connexion 3 spends most of a lookup's CPU in its own layers: three routers, a request object with
form and file parsing, a URI parser and a parameter decorator per request (connexion#2077). See
docs/performance.md for what this bought.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from connexion.context import _context, _receive, _scope
from connexion.decorators.parameter import pythonic
from connexion.json_schema import resolve_refs
from connexion.jsonifier import Jsonifier
from connexion.utils import get_function_from_name
from connexion.validators import AbstractResponseBodyValidator
from jsonschema import Draft4Validator
from starlette.types import ASGIApp, Receive, Scope, Send

from maeve_api.web.validation import compiled

HOT_PATH = "x-hot-path"
_PARAMETER = re.compile(r"\{([^}]+)\}")
_JSON_CONTENT_TYPE = (b"content-type", b"application/json")


class HotPathError(ValueError):
    """An operation marked ``x-hot-path`` is not one this module can serve exactly as Connexion would."""


@dataclass(frozen=True)
class Parameter:
    """A path parameter: its name in the spec, the handler's argument for it and its schema's validator."""

    name: str
    argument: str
    validator: Any


@dataclass(frozen=True)
class HotRoute:
    """One marked operation: its path pattern, its path parameters, its handler and its JSON responses."""

    router_id: str
    template: str
    pattern: re.Pattern[str]
    parameters: tuple[Parameter, ...]
    handler: Callable[..., Awaitable[tuple[Any, int]]]
    responses: dict[str, Any]

    def response_schema(self, status: int) -> dict[str, Any]:
        """The JSON schema of the response for ``status``, as Connexion finds it (else ``default``, else any)."""
        response = self.responses.get(str(status)) or self.responses.get("default") or {}
        schema: dict[str, Any] = response.get("content", {}).get("application/json", {}).get("schema", {})
        return schema

    def arguments(self, path: str) -> dict[str, str] | None:
        """The handler's keyword arguments for ``path``, or None unless it matches and every value is valid."""
        matched = self.pattern.fullmatch(path)
        if matched is None:
            return None
        arguments = {}
        for parameter in self.parameters:
            value = matched[parameter.name]
            if not parameter.validator.is_valid(value):
                return None
            arguments[parameter.argument] = value
        return arguments


def _pattern(template: str, formats: dict[str, str | None]) -> re.Pattern[str]:
    """A path template as Starlette's router compiles it for Connexion: ``format: path`` also matches ``/``."""
    parts = _PARAMETER.split(template)
    regex = "".join(
        f"(?P<{part}>{'.*' if formats[part] == 'path' else '[^/]+'})" if odd else re.escape(part)
        for odd, part in ((index % 2 == 1, part) for index, part in enumerate(parts))
    )
    return re.compile(regex)


def _route(base_path: str, template: str, item: dict[str, Any], operation: dict[str, Any], name: str) -> HotRoute:
    operation_id = operation["operationId"]
    parameters = [*item.get("parameters", ()), *operation.get("parameters", ())]
    if "requestBody" in operation or any(parameter["in"] != "path" for parameter in parameters):
        raise HotPathError(f"{operation_id}: a hot path takes path parameters only")
    if operation.get("security"):
        raise HotPathError(f"{operation_id}: a hot path bypasses Connexion's security checks")
    handler = get_function_from_name(name)
    if not inspect.iscoroutinefunction(handler):
        raise HotPathError(f"{operation_id}: a hot path's handler must be an async def function")
    return HotRoute(
        router_id=name,
        template=template,
        pattern=_pattern(base_path + template, _formats(item)),
        parameters=tuple(
            Parameter(
                parameter["name"],
                pythonic(parameter["name"]),
                compiled(parameter["schema"], Draft4Validator),
            )
            for parameter in parameters
        ),
        handler=handler,
        responses=operation["responses"],
    )


def _formats(item: dict[str, Any]) -> dict[str, str | None]:
    """The ``format`` of each path parameter a path item or any of its operations declares."""
    declared = [*item.get("parameters", ())]
    for operation in item.values():
        if isinstance(operation, dict):
            declared += operation.get("parameters", ())
    return {parameter["name"]: parameter["schema"].get("format") for parameter in declared if parameter["in"] == "path"}


def _example(template: str) -> str:
    """A path that ``template`` matches whatever its parameters' formats: each parameter as ``x``."""
    return _PARAMETER.sub("x", template)


def _check_no_overlap(routes: list[HotRoute], templates: dict[str, dict[str, Any]], base_path: str) -> None:
    """Refuses a hot route that could take a request meant for another path of the spec.

    Connexion tries the paths in the spec's order; a hot route is tried first, so it must match no path
    of another template, nor another template any of its own.
    """
    patterns = {template: _pattern(base_path + template, _formats(item)) for template, item in templates.items()}
    for route in routes:
        for template, pattern in patterns.items():
            if template != route.template and (
                route.pattern.fullmatch(base_path + _example(template))
                or pattern.fullmatch(base_path + _example(route.template))
            ):
                raise HotPathError(f"the hot path {route.template} overlaps {template}")


def hot_routes(spec: dict[str, Any], handler_name: Callable[[str, str], str]) -> list[HotRoute]:
    """The routes of the GET operations that ``spec`` marks ``x-hot-path: true``.

    ``handler_name(controller, operation_id)`` names each handler as the app's resolver does.
    """
    if spec.get("security"):
        raise HotPathError("a hot path bypasses Connexion's security checks")
    resolved = resolve_refs(spec)
    base_path = resolved["servers"][0]["url"].rstrip("/")
    routes = []
    for template, item in resolved["paths"].items():
        for method, operation in item.items():
            if not (isinstance(operation, dict) and operation.get(HOT_PATH)):
                continue
            if method != "get":
                raise HotPathError(f"{operation['operationId']}: only a GET can be a hot path")
            name = handler_name(operation["x-openapi-router-controller"], operation["operationId"])
            routes.append(_route(base_path, template, item, operation, name))
    _check_no_overlap(routes, resolved["paths"], base_path)
    return routes


class HotPaths:
    """ASGI middleware serving the hot routes' valid requests; the rest goes on to ``app``.

    It sits inside Connexion's error mapping, so a handler's exceptions are answered as they are for
    every other operation, and it records the matched operation where the request log looks for it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: list[HotRoute],
        jsonifier: Jsonifier,
        response_validator: type[AbstractResponseBodyValidator] | None = None,
    ) -> None:
        """``response_validator``, if given, checks every body against its response schema, as Connexion's
        response validation does."""
        self.app = app
        self.routes = routes
        self.jsonifier = jsonifier
        self.response_validator = response_validator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and not scope["query_string"]
            and not scope.get("root_path")
            and not _has_body(scope)
        ):
            for route in self.routes:
                arguments = route.arguments(scope["path"])
                if arguments is not None:
                    await self._serve(route, arguments, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(
        self, route: HotRoute, arguments: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        extensions = scope.setdefault("extensions", {})
        extensions["connexion_routing"] = {"operation_id": route.router_id}
        # What Connexion's context middleware sets, for handlers that use connexion.request.
        _context.set(extensions.get("connexion_context", {}))
        _scope.set(scope)
        _receive.set(receive)
        body, status = await route.handler(**arguments)
        content = self.jsonifier.dumps(body).encode()
        if self.response_validator is not None:
            validator = self.response_validator(scope, schema=route.response_schema(status), encoding="utf-8")
            send = validator.wrap_send(send)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(content)).encode()), _JSON_CONTENT_TYPE],
            }
        )
        await send({"type": "http.response.body", "body": content})


def _has_body(scope: Scope) -> bool:
    """Whether the request announces a body, by a non-zero Content-Length or a Transfer-Encoding."""
    for name, value in scope["headers"]:
        if (name == b"content-length" and value != b"0") or name == b"transfer-encoding":
            return True
    return False
