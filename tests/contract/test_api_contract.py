"""schemathesis against the served spec, in-process: every check, positive and negative data, stateful."""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from maeve_api.app import create_app
from maeve_api.charge_stations import MAX_SETTING_NAME
from maeve_api.emaid import normalize_emaid
from maeve_api.settings import Settings
from tests.factories import make_certificate_pem

#: Generated cases per operation (and stateful runs); `make fuzz` raises it for a longer run.
EXAMPLES = int(os.environ.get("MAEVE_CONTRACT_EXAMPLES", "40"))
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _emaid_with_check_digit(body: dict[str, Any]) -> None:
    compact = body.get("contractId", "").replace("-", "") if isinstance(body.get("contractId"), str) else ""
    if len(compact) == 15:
        body["contractId"] = normalize_emaid(compact[:14])


def _settings_with_valid_names(body: dict[str, Any]) -> None:
    for name in [name for name in body if not 1 <= len(name) <= MAX_SETTING_NAME]:
        del body[name]


def _real_certificates(body: dict[str, Any]) -> None:
    if isinstance(body.get("certificate"), str):
        body["certificate"] = make_certificate_pem("contract")
    for index, item in enumerate(body.get("certificates") or []):
        item["certificate"] = make_certificate_pem("contract", serial_number=index + 1)


# The rules the spec cannot express in OpenAPI 3.0: the eMAID check digit, setting name lengths
# (propertyNames is not in 3.0) and "is an X.509 certificate". Positive cases are made to keep them.
POSITIVE_FIXES = {
    "setToken": _emaid_with_check_digit,
    "reconfigureChargeStation": _settings_with_valid_names,
    "installChargeStationCertificates": _real_certificates,
    "uploadCertificate": _real_certificates,
}


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """Make positive cases keep the domain rules the spec cannot express."""
    fix = POSITIVE_FIXES.get(case.operation.definition.raw.get("operationId"))
    if fix is not None and case.meta.generation.mode.is_positive and isinstance(case.body, dict):
        fix(case.body)
    return case


@pytest.fixture(scope="session")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    database = tmp_path_factory.mktemp("contract") / "contract.db"
    app = create_app(Settings(database_url=f"sqlite:///{database}", validate_responses=True))
    return schemathesis.openapi.from_asgi("/api/v0/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@HYPOTHESIS
def test_every_operation_conforms(case: Any) -> None:
    """Generated valid and invalid requests get documented, conforming responses and never a 5xx."""
    case.call_and_validate()


def test_stateful_sequences_conform(api_schema: Any) -> None:
    """Sequences that follow the spec's links (register then look up, upload then delete) conform."""
    api_schema.as_state_machine().run(
        settings=settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
            stateful_step_count=6,
        )
    )
