"""schemathesis against the OCPI document, in-process: every check, positive and negative data, stateful."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis

from maeve_api.app import load_spec
from maeve_api.emaid import normalize_emaid
from maeve_api.ocpi.app import OCPI_SPEC, create_ocpi_app
from maeve_api.settings import Settings
from maeve_api.storage.sqlite import SqliteStorage
from tests.contract.generation import per_operation_tests

#: A token A registered as REGISTERED: it reaches every module and is not a party, so no generated call
#: can unregister it.
TOKEN = "contract-token"
AUTHORIZATION = {"Authorization": f"Token {TOKEN}"}
UNREACHABLE_PARTNER = "http://127.0.0.1:9/ocpi/versions"
OCPI_OPERATIONS = {"postCredentials", "putCredentials", "putToken", "patchToken"}


def _fix_token(case: Any) -> None:
    """A positive token body names the path's token and carries an eMAID with its check digit."""
    body = case.body
    for key, parameter in (("country_code", "country_code"), ("party_id", "party_id"), ("uid", "token_uid")):
        if key in body and parameter in (case.path_parameters or {}):
            body[key] = case.path_parameters[parameter]
    contract_id = body.get("contract_id")
    if isinstance(contract_id, str) and len(contract_id.replace("-", "")) == 15:
        body["contract_id"] = normalize_emaid(contract_id.replace("-", "")[:14])


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """Send partner URLs to loopback, and make token bodies agree with their path and the eMAID rule."""
    operation_id = case.operation.definition.raw.get("operationId")
    if operation_id not in OCPI_OPERATIONS or not isinstance(case.body, dict):
        return case
    if operation_id in ("postCredentials", "putCredentials") and "url" in case.body:
        case.body["url"] = UNREACHABLE_PARTNER
    if operation_id in ("putToken", "patchToken") and case.meta.generation.mode.is_positive:
        _fix_token(case)
    return case


@pytest.fixture(scope="session")
def ocpi_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    database = tmp_path_factory.mktemp("ocpi-contract") / "contract.db"
    store = SqliteStorage(database)
    store.registrations.put(TOKEN, "REGISTERED")
    store.close()
    app = create_ocpi_app(
        Settings(database_url=f"sqlite:///{database}", validate_responses=True, ocpi_connect_timeout=0.5),
        publish=False,
    )
    return schemathesis.openapi.from_asgi("/ocpi/openapi.json", app)


schema = schemathesis.pytest.from_fixture("ocpi_schema")


def _conformance_test() -> Any:
    def test(case: Any) -> None:
        """Generated valid and invalid OCPI requests get documented envelopes and never a 5xx other than 502."""
        case.call_and_validate(headers={**(case.headers or {}), **AUTHORIZATION})

    return test


globals().update(per_operation_tests(schema, load_spec(OCPI_SPEC), _conformance_test))
