"""Setting names as MaEVe parses them into OCPP 2.0.1 component/variable references, and secret settings."""

from __future__ import annotations

import re
from typing import Any

_ID = r"[A-Za-z0-9*\-_=:+|@.]+"
# The reference's grammar, quirks included (ocpp-notes.md §1): ``EVSE;1/Power`` is component instance 1,
# and ``Comp/Var;Target`` is variable instance "Target". A body valid for MaEVe means the same here.
_NAME = re.compile(
    rf"^({_ID})(?:;({_ID}))?(?:;(\d+))?/({_ID})(?:;({_ID}))?(?:;(Actual|Target|MinSet|MaxSet))?$"
)

#: OCPP 2.0.1 SetVariables: attributeValue is at most 1000 characters; names 50 characters each.
MAX_V201_VALUE = 1000
MAX_V201_IDENTIFIER = 50
#: OCPP 1.6 ChangeConfiguration limits.
MAX_V16_KEY = 50
MAX_V16_VALUE = 500

#: Settings that carry the station's own basic-auth password: never shown, and stored as a hash once applied.
V201_PASSWORD = ("SecurityCtrlr", "BasicAuthPassword")
V16_PASSWORD = "AuthorizationKey"


class UnmappableName(ValueError):
    """The setting cannot be sent: the message says why."""


def set_variable_data(name: str, value: str) -> dict[str, Any]:
    """The SetVariables item (snake_case, as the ``ocpp`` library takes it) for a setting; raises UnmappableName."""
    match = _NAME.fullmatch(name)
    if match is None:
        raise UnmappableName("not <component>[;<instance>[;<evse>]]/<variable>[;<instance>[;<attributeType>]]")
    component, component_instance, evse, variable, variable_instance, attribute_type = match.groups()
    for identifier in (component, component_instance, variable, variable_instance):
        if identifier is not None and len(identifier) > MAX_V201_IDENTIFIER:
            raise UnmappableName(f"component and variable names are at most {MAX_V201_IDENTIFIER} characters")
    if len(value) > MAX_V201_VALUE:
        raise UnmappableName(f"value longer than {MAX_V201_VALUE} characters")
    component_ref: dict[str, Any] = {"name": component}
    if component_instance is not None:
        component_ref["instance"] = component_instance
    if evse is not None:
        component_ref["evse"] = {"id": int(evse)}
    variable_ref: dict[str, Any] = {"name": variable}
    if variable_instance is not None:
        variable_ref["instance"] = variable_instance
    return {
        "attribute_type": attribute_type or "Actual",
        "attribute_value": value,
        "component": component_ref,
        "variable": variable_ref,
    }


def reference_key(component: dict[str, Any], variable: dict[str, Any], attribute_type: str | None) -> tuple[Any, ...]:
    """What matches a SetVariables result to its request: component, EVSE, variable and attribute type."""
    evse = component.get("evse") or {}
    return (
        component.get("name"),
        component.get("instance"),
        evse.get("id"),
        evse.get("connector_id"),
        variable.get("name"),
        variable.get("instance"),
        attribute_type or "Actual",
    )


def is_secret(name: str) -> bool:
    """Whether the setting carries a station password (2.0.1 or 1.6), whatever the instance or attribute type."""
    if name == V16_PASSWORD:
        return True
    match = _NAME.fullmatch(name)
    return match is not None and (match.group(1), match.group(4)) == V201_PASSWORD


def check_v16(name: str, value: str) -> None:
    """Raise UnmappableName unless ChangeConfiguration can carry the key and value."""
    if len(name) > MAX_V16_KEY:
        raise UnmappableName(f"OCPP 1.6 configuration keys are at most {MAX_V16_KEY} characters")
    if len(value) > MAX_V16_VALUE:
        raise UnmappableName(f"OCPP 1.6 configuration values are at most {MAX_V16_VALUE} characters")
