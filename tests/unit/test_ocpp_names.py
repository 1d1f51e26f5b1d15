"""Setting names parsed into OCPP 2.0.1 references as MaEVe parses them, and which settings are secret."""

from __future__ import annotations

import pytest

from maeve_api.ocpp.names import UnmappableName, check_v16, is_secret, set_variable_data


@pytest.mark.parametrize(
    ("name", "component", "variable", "attribute_type"),
    [
        ("OCPPCommCtrlr/HeartbeatInterval", {"name": "OCPPCommCtrlr"}, {"name": "HeartbeatInterval"}, "Actual"),
        # The reference grammar's quirks, kept: a single ';' part is the instance, not the EVSE or attribute type.
        ("EVSE;1/Power", {"name": "EVSE", "instance": "1"}, {"name": "Power"}, "Actual"),
        ("Comp/Var;Target", {"name": "Comp"}, {"name": "Var", "instance": "Target"}, "Actual"),
        ("EVSE;inst;2/Power;v;MaxSet", {"name": "EVSE", "instance": "inst", "evse": {"id": 2}},
         {"name": "Power", "instance": "v"}, "MaxSet"),
    ],
)
def test_names_map_to_component_variable_and_attribute_type(name, component, variable, attribute_type):
    item = set_variable_data(name, "v")
    assert (item["component"], item["variable"], item["attribute_type"], item["attribute_value"]) == (
        component, variable, attribute_type, "v")


@pytest.mark.parametrize("name", ["NoSlash", "Comp/Var;inst;Foo", "a b/c", "/Var", "Comp/", "C" * 51 + "/V"])
def test_unmappable_names_are_refused_with_a_reason(name):
    with pytest.raises(UnmappableName) as refused:
        set_variable_data(name, "v")
    assert str(refused.value)


def test_values_longer_than_set_variables_allows_are_refused():
    with pytest.raises(UnmappableName, match="1000"):
        set_variable_data("A/B", "x" * 1001)


def test_station_passwords_are_secret_whatever_their_instance():
    assert is_secret("SecurityCtrlr/BasicAuthPassword")
    assert is_secret("SecurityCtrlr;x/BasicAuthPassword;y;Actual")
    assert is_secret("AuthorizationKey")
    assert not is_secret("SecurityCtrlr/OrganizationName")


def test_1_6_limits():
    check_v16("K" * 50, "v" * 500)
    with pytest.raises(UnmappableName):
        check_v16("K" * 51, "v")
    with pytest.raises(UnmappableName):
        check_v16("K", "v" * 501)
