"""Request validators whose messages name the parameter or body field and the rule it broke, in one line."""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import AsyncGenerator
from typing import Any

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem
from connexion.json_schema import Draft4RequestValidator
from connexion.utils import is_null, is_nullable
from connexion.validators import VALIDATOR_MAP, JSONRequestBodyValidator, ParameterValidator
from jsonschema import Draft4Validator, ValidationError
from starlette.types import Scope

# Only a \uD800-\uDFFF escape can put an unpaired surrogate into a parsed body.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


# Connexion builds a jsonschema validator per request, and one that is never reused costs more than the
# validation itself. The spec's schema objects live as long as the app, so each is compiled once.
_COMPILED: dict[int, tuple[dict[str, Any], Any]] = {}


def compiled(schema: dict[str, Any], validator_class: Any) -> Any:
    """The ``validator_class`` validator for ``schema`` (with the format checker), built on first use."""
    cached = _COMPILED.get(id(schema))
    if cached is None or cached[0] is not schema or not isinstance(cached[1], validator_class):
        cached = (schema, validator_class(schema, format_checker=Draft4Validator.FORMAT_CHECKER))
        _COMPILED[id(schema)] = cached
    return cached[1]


def _refuse_constant(name: str) -> None:
    """NaN and Infinity, which Python's parser accepts, are not JSON (RFC 8259)."""
    raise BadRequestProblem(detail=f"the request body is not valid JSON: {name} is not a JSON number")


def _field_path(path: deque[Any]) -> str:
    """``certificates[0].type`` for the path ``["certificates", 0, "type"]``; ``body`` for the root."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _rule(error: ValidationError) -> str | None:
    """The broken rule of a keyword whose jsonschema message would echo the whole value, or None."""
    limit = error.validator_value
    match error.validator:
        case "maxLength":
            return f"must be at most {limit} characters long"
        case "minLength":
            return f"must be at least {limit} characters long"
        case "pattern":
            return f"must match the pattern {limit}"
        case "enum":
            return "must be one of " + ", ".join(str(choice) for choice in limit)
        case "type":
            return f"must be of type {limit}"
        case "minimum":
            return f"must be at least {limit}"
        case "maximum":
            return f"must be at most {limit}"
        case "minItems" | "maxItems":
            return f"must have {'at least' if error.validator == 'minItems' else 'at most'} {limit} items"
        case "maxProperties":
            return f"must have at most {limit} entries"
        case "format":
            return f"must be a valid {limit}"
    return None


def describe(error: ValidationError) -> str:
    """One line naming where ``error`` happened and which rule of the schema was broken."""
    where = _field_path(error.absolute_path)
    rule = _rule(error)
    # Values are never repeated: they may be large, or secrets that must not reach a log.
    if rule is not None:
        return f"{where}: {rule}"
    # required and additionalProperties messages name only properties; shorten anything else.
    message = error.message if len(error.message) <= 200 else error.message[:199] + "…"
    return f"{where}: {message}"


class NamingParameterValidator(ParameterValidator):
    """Connexion's parameter validator, with errors like ``path parameter 'csId': must be at most 28 characters long``.

    Connexion returns jsonschema's multi-line dump of the schema, which does not name the parameter.
    """

    @staticmethod
    def validate_parameter(
        parameter_type: str, value: Any, param: dict[str, Any], param_name: str | None = None
    ) -> Any:
        if is_nullable(param) and is_null(value):
            return None
        if value is None:
            if param.get("required"):
                return f"Missing {parameter_type} parameter '{param['name']}'"
            return None
        try:
            compiled(param.get("schema", param), Draft4Validator).validate(value)
        except ValidationError as exception:
            rule = describe(exception).removeprefix("body: ")
            return f"{parameter_type} parameter '{param['name']}': {rule}"
        return None


class NamingJSONBodyValidator(JSONRequestBodyValidator):
    """Connexion's JSON body validator, with one-line errors that name the field.

    A body nested too deeply for the JSON parser, or holding an unpaired surrogate escape such as
    ``"\\ud800"`` (which Python's parser accepts but no store can encode), is a 400.
    """

    async def _parse(self, stream: AsyncGenerator[bytes, None], scope: Scope) -> Any:
        text = b"".join([chunk async for chunk in stream]).decode(self._encoding)
        if not text:
            return None
        try:
            body = json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as exc:
            raise BadRequestProblem(detail=f"the request body is not valid JSON: {exc}") from None
        except RecursionError:
            raise BadRequestProblem(detail="the request body is nested too deeply") from None
        if _SURROGATE_ESCAPE.search(text):
            try:
                json.dumps(body, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequestProblem(detail="the request body holds an unpaired UTF-16 surrogate escape") from None
        return body

    @property
    def _validator(self) -> Any:
        return compiled(self._schema, Draft4RequestValidator)

    def _validate(self, body: Any) -> dict[str, Any] | None:
        if not self._nullable and body is None:
            raise BadRequestProblem(detail="the request body must be a JSON object, not empty or null")
        try:
            self._validator.validate(body)
        except ValidationError as exception:
            raise BadRequestProblem(detail=describe(exception)) from None
        except RecursionError:
            raise BadRequestProblem(detail="the request body is nested too deeply") from None
        return None


VALIDATORS = {
    **VALIDATOR_MAP,
    "parameter": NamingParameterValidator,
    "body": MediaTypeDict({**VALIDATOR_MAP["body"], "*/*json": NamingJSONBodyValidator}),
}
