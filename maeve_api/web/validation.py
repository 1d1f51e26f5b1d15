"""Request validators whose messages name the parameter or body field and the rule it broke, in one line."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, Iterable, Sequence
from typing import Any

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem
from connexion.json_schema import Draft4RequestValidator
from connexion.utils import is_null, is_nullable
from connexion.validators import VALIDATOR_MAP, JSONRequestBodyValidator, ParameterValidator
from jsonschema import Draft4Validator, ValidationError
from starlette.types import Receive, Scope

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


#: How many failing fields one message names; the rest are counted.
MAX_REPORTED = 5

#: The spec's patterns in plain words: a message never shows a regular expression. A pattern missing
#: here is described as "is not in the documented format" (a test checks that both documents' are here).
PATTERN_RULES = {
    "^[A-Za-z]{2}$": "must be two letters",
    "^[A-Z]{3}$": "must be three capital letters",
    "^[A-Za-z0-9]{3}$": "must be three letters or digits",
    "^[ -~]+$": "must be printable ASCII characters",
    "^[!-~]+$": "must be printable ASCII characters without spaces",
    "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$": (
        "must be the padded standard base64 of a 32-byte SHA-256 digest (44 characters)"
    ),
    "^([A-Za-z0-9+/_-]{42}[AEIMQUYcgkosw048]=?|[0-9A-Fa-f]{64})$": (
        "must be the base64 (either alphabet, padded or not) or the 64 hex digits of a 32-byte SHA-256 digest"
    ),
    "^[A-Za-z]{2}-?[A-Za-z0-9]{3}-?[A-Za-z0-9]{9}(-?[A-Za-z0-9])?$": (
        "must be an eMAID: country code, party id and 9 characters, then optionally a check digit,"
        " with or without dashes"
    ),
    "^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$": "must be an IANA time zone name such as Europe/London",
    "^-?([0-8]?[0-9]\\.[0-9]{5,7}|90\\.0{5,7})$": "must be a latitude in decimal degrees with 5 to 7 decimals",
    "^-?((1[0-7][0-9]|[0-9]?[0-9])\\.[0-9]{5,7}|180\\.0{5,7})$": (
        "must be a longitude in decimal degrees with 5 to 7 decimals"
    ),
    (
        "^(?!0000)[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
        "([.][0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?$"
    ): "must be a date and time such as 2024-05-06T07:08:09Z",
}

_TYPES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a JSON object",
    "array": "a list",
    "null": "null",
}

_FORMATS = {
    "date-time": "a date and time such as 2024-05-06T07:08:09Z",
    "uri": "an absolute URL",
    "int32": "a 32-bit integer",
    "int64": "a 64-bit integer",
}

# A property name is named in a message only when it is plain; anything else is described, not shown.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_./:;-]{1,64}")


def _refuse_constant(name: str) -> None:
    """NaN and Infinity, which Python's parser accepts, are not JSON (RFC 8259)."""
    raise BadRequestProblem(detail=f"body: is not valid JSON ({name} is not a JSON number)")


def _field_path(path: Iterable[Any]) -> str:
    """``certificates[0].type`` for the path ``["certificates", 0, "type"]``; ``body`` for the root."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _child(where: Sequence[Any], name: str) -> str:
    return _field_path([*where, name]) if _PLAIN_NAME.fullmatch(name) else f"{_field_path(where)}: a field name"


def _type_rule(expected: Any) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    return "must be " + " or ".join(_TYPES.get(name, name) for name in names)


def _rule(error: ValidationError) -> str:
    """The broken rule in plain words; never the value sent, which may be large or secret."""
    limit = error.validator_value
    match error.validator:
        case "maxLength":
            return f"must be at most {limit} characters long"
        case "minLength":
            return "must not be empty" if limit == 1 else f"must be at least {limit} characters long"
        case "pattern":
            return PATTERN_RULES.get(limit, "is not in the documented format")
        case "enum":
            return "must be one of " + ", ".join(str(choice) for choice in limit if choice is not None)
        case "type":
            return _type_rule(limit)
        case "minimum":
            return f"must be at least {limit}"
        case "maximum":
            return f"must be at most {limit}"
        case "exclusiveMinimum" | "exclusiveMaximum":
            return "is out of range"
        case "minItems":
            return f"must have at least {limit} items"
        case "maxItems":
            return f"must have at most {limit} items"
        case "minProperties":
            return f"must have at least {limit} entries"
        case "maxProperties":
            return f"must have at most {limit} entries"
        case "uniqueItems":
            return "must not repeat an item"
        case "format":
            return f"must be {_FORMATS.get(limit, 'a valid ' + str(limit))}"
        case "multipleOf":
            return f"must be a multiple of {limit}"
    return "is not valid"


def problems(error: ValidationError) -> list[tuple[str, str]]:
    """The (field, rule) pairs of one jsonschema error: one per missing or unknown property."""
    where = list(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        return [(_child(where, name), "is required") for name in error.validator_value if name not in instance]
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = set(error.schema.get("properties", {}))
        return [(_child(where, str(name)), "is not a known field") for name in instance if name not in known]
    return [(_field_path(where), _rule(error))]


def join_problems(found: Iterable[str]) -> str:
    """``field: rule; field: rule`` for up to MAX_REPORTED distinct ``field: rule`` problems, then how many more."""
    unique = list(dict.fromkeys(found))
    shown = "; ".join(unique[:MAX_REPORTED])
    hidden = len(unique) - MAX_REPORTED
    return f"{shown}; and {hidden} more" if hidden > 0 else shown


def describe(error: ValidationError) -> str:
    """One line naming where ``error`` happened and which rule of the schema was broken."""
    return join_problems(f"{field}: {rule}" for field, rule in problems(error))


def describe_all(validator: Any, instance: Any) -> str | None:
    """Every failing field of ``instance`` (up to MAX_REPORTED) in one line, or None if it is valid."""
    errors = sorted(validator.iter_errors(instance), key=lambda error: [str(part) for part in error.absolute_path])
    if not errors:
        return None
    return join_problems(f"{field}: {rule}" for error in errors for field, rule in problems(error))


class NamingParameterValidator(ParameterValidator):
    """Connexion's parameter validator, with every bad parameter named: ``csId: must be at most 28 characters long``.

    Connexion stops at the first bad parameter and returns jsonschema's multi-line dump of the schema,
    which does not name the parameter.
    """

    @staticmethod
    def validate_parameter(
        parameter_type: str, value: Any, param: dict[str, Any], param_name: str | None = None
    ) -> Any:
        if is_nullable(param) and is_null(value):
            return None
        if value is None:
            if param.get("required"):
                return f"{param['name']}: is required"
            return None
        found = describe_all(compiled(param.get("schema", param), Draft4Validator), value)
        if found is None:
            return None
        return found.replace("body", param["name"], 1) if found.startswith("body") else found

    def validate_request(self, request: Any) -> None:
        found: list[str] = []
        if self.strict_validation:
            extra = self.validate_query_parameter_list(request, security_params=self.security_query_params)
            found += [
                f"{name}: is not a known query parameter" if _PLAIN_NAME.fullmatch(name) else "query: unknown parameter"
                for name in sorted(extra)
            ]
        checks = (
            ("query", self.validate_query_parameter),
            ("path", self.validate_path_parameter),
            ("header", self.validate_header_parameter),
            ("cookie", self.validate_cookie_parameter),
        )
        for kind, check in checks:
            for param in self.parameters.get(kind, []):
                try:
                    error = check(param, request)
                except BadRequestProblem:  # the URI parser's coercion of a wrongly typed value
                    error = f"{param['name']}: {_type_rule(param.get('schema', {}).get('type', 'string'))}"
                if error:
                    found.append(error)
        if found:
            raise BadRequestProblem(detail=join_problems(found))


class NamingJSONBodyValidator(JSONRequestBodyValidator):
    """Connexion's JSON body validator, with one-line errors that name every failing field.

    A body nested too deeply for the JSON parser, or holding an unpaired surrogate escape such as
    ``"\\ud800"`` (which Python's parser accepts but no store can encode), is a 400.
    """

    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> Any:
        try:
            return await super().wrap_receive(receive, scope=scope)
        except BadRequestProblem as problem:
            if problem.detail == "RequestBody is required":
                raise BadRequestProblem(detail="body: is required") from None
            raise

    async def _parse(self, stream: AsyncGenerator[bytes, None], scope: Scope) -> Any:
        text = b"".join([chunk async for chunk in stream]).decode(self._encoding)
        if not text:
            return None
        try:
            body = json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as exc:
            raise BadRequestProblem(
                detail=f"body: is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
            ) from None
        except RecursionError:
            raise BadRequestProblem(detail="body: is nested too deeply") from None
        if _SURROGATE_ESCAPE.search(text):
            try:
                json.dumps(body, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequestProblem(detail="body: holds an unpaired UTF-16 surrogate escape") from None
        return body

    @property
    def _validator(self) -> Any:
        return compiled(self._schema, Draft4RequestValidator)

    def _validate(self, body: Any) -> dict[str, Any] | None:
        if not self._nullable and body is None:
            raise BadRequestProblem(detail="body: must be a JSON object")
        try:
            found = describe_all(self._validator, body)
        except RecursionError:
            raise BadRequestProblem(detail="body: is nested too deeply") from None
        if found is not None:
            raise BadRequestProblem(detail=found)
        return None


VALIDATORS = {
    **VALIDATOR_MAP,
    "parameter": NamingParameterValidator,
    "body": MediaTypeDict({**VALIDATOR_MAP["body"], "*/*json": NamingJSONBodyValidator}),
}
