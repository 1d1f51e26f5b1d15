"""schemathesis against the OCPI document, in-process: every check, positive and negative data.

The calls are made as a really registered partner: before each generated case the store holds the eMSP NL/EMS,
registered with ``PARTY_TOKEN``, and a REGISTERED token A for NL/EMS that may register it again; the partner
itself is served on loopback, so that a generated POST or PUT of credentials runs a real handshake against it
and generated tokens are the partner's own, written and read through the ownership checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis

from maeve_api.documents import OCPI_SPEC, document_json, load_spec
from maeve_api.ocpi.app import create_ocpi_app
from maeve_api.ocpi.registration import token_hash
from maeve_api.settings import Settings
from maeve_api.storage import Storage
from maeve_api.storage.sqlite import SqliteStorage
from tests.contract.generation import per_operation_tests
from tests.ocpi.partner import Partner

#: The token A an operator registered for NL/EMS (it may POST credentials), and the registered party's token.
TOKEN_A = "contract-token-a"
PARTY_TOKEN = "contract-token-c"
#: The token the partner accepts from us: generated credentials carry it, so the handshake reaches the partner.
PARTNER_TOKEN = "contract-token-b"
COUNTRY_CODE, PARTY_ID = "NL", "EMS"
OCPI_OPERATIONS = {"postCredentials", "putCredentials", "putToken", "patchToken", "getToken"}
STATE: dict[str, Any] = {}


def _party(versions_url: str) -> dict[str, Any]:
    return {
        "key": f"{COUNTRY_CODE}*{PARTY_ID}",
        "roles": [
            {"role": "EMSP", "country_code": COUNTRY_CODE, "party_id": PARTY_ID, "business_details": {"name": "E"}}
        ],
        "version": "2.2.1",
        "versions_url": versions_url,
        "endpoints": [],
        "outbound_token": PARTNER_TOKEN,
        "token_encoding": "base64",
        "inbound_token_hash": token_hash(PARTY_TOKEN),
        "registered_at": datetime(2026, 1, 1, tzinfo=UTC),
    }


def _reset(store: Storage, versions_url: str, registered: bool = True) -> None:
    """The registration a case starts from: the party NL/EMS with PARTY_TOKEN (unless not ``registered``), and a
    token A for NL/EMS."""
    store.parties.remove(f"{COUNTRY_CODE}*{PARTY_ID}")
    if registered:
        store.parties.create(_party(versions_url))
    store.registrations.put(token_hash(TOKEN_A), "REGISTERED", (COUNTRY_CODE, PARTY_ID))


def _fix_token(case: Any, store: Storage) -> None:
    """A positive token request names one of the caller's tokens, its body agreeing with the path and the type."""
    path = case.path_parameters
    path["country_code"], path["party_id"] = COUNTRY_CODE, PARTY_ID
    query = case.query if isinstance(case.query, dict) else {}
    body = case.body if isinstance(case.body, dict) else {}
    stored = store.tokens.find(path["token_uid"])
    token_type = stored["type"] if stored else query.get("type") or body.get("type") or "RFID"
    if "type" in query or stored:
        query["type"] = token_type
        case.query = query
    for key, parameter in (("country_code", "country_code"), ("party_id", "party_id"), ("uid", "token_uid")):
        if key in body:
            body[key] = path[parameter]
    if "type" in body:
        body["type"] = token_type


def _fix_credentials(case: Any, versions_url: str) -> None:
    """Positive credentials point at the partner, with the token it accepts, as the identity token A was named for."""
    case.body["url"] = versions_url
    case.body["token"] = PARTNER_TOKEN
    for role in case.body.get("roles", []):
        role["country_code"], role["party_id"] = COUNTRY_CODE, PARTY_ID


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """Start every OCPI case from the registration, and make positive bodies those of the registered partner."""
    if not STATE or case.operation.definition.raw.get("operationId") is None:
        return case
    operation_id = case.operation.definition.raw["operationId"]
    store: Storage = STATE["store"]
    if operation_id in OCPI_OPERATIONS and case.meta.generation.mode.is_positive:
        if operation_id in ("postCredentials", "putCredentials") and isinstance(case.body, dict):
            _fix_credentials(case, STATE["versions_url"])
        elif operation_id in ("putToken", "patchToken", "getToken") and case.path_parameters:
            _fix_token(case, store)
    return case


@pytest.fixture(scope="session")
def partner() -> Iterator[Partner]:
    """The eMSP NL/EMS on loopback, answering its versions and details to PARTNER_TOKEN."""
    served = Partner(country_code=COUNTRY_CODE, party_id=PARTY_ID)
    served.accepted = {PARTNER_TOKEN}
    served.start()
    yield served
    served.stop()


@pytest.fixture(scope="session")
def ocpi_schema(tmp_path_factory: pytest.TempPathFactory, partner: Partner) -> Iterator[Any]:
    database = tmp_path_factory.mktemp("ocpi-contract") / "contract.db"
    store = SqliteStorage(database)
    STATE.update(store=store, versions_url=partner.versions_url)
    _reset(store, partner.versions_url)
    app = create_ocpi_app(
        Settings(
            database_url=f"sqlite:///{database}",
            validate_responses=True,
            ocpi_connect_timeout=0.5,
            ocpi_read_timeout=2.0,
            ocpi_allow_private_networks=True,
        ),
        publish=False,
    )
    yield schemathesis.openapi.from_asgi("/ocpi/openapi.json", _with_document(app))
    STATE.clear()
    store.close()


def _with_document(app: Any) -> Any:
    """The OCPI app, plus its document at /ocpi/openapi.json for schemathesis to load: the listener does not
    serve it to partners (the internal listener does)."""
    body = document_json(OCPI_SPEC)

    async def served(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/ocpi/openapi.json":
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return served


schema = schemathesis.pytest.from_fixture("ocpi_schema")


def _conformance_test() -> Any:
    def test(case: Any) -> None:
        """Generated valid and invalid OCPI requests of a registered partner get documented envelopes and never a
        5xx other than 502."""
        operation_id = case.operation.definition.raw.get("operationId")
        registering = operation_id == "postCredentials" and case.meta.generation.mode.is_positive
        _reset(STATE["store"], STATE["versions_url"], registered=not registering)
        token = TOKEN_A if registering else PARTY_TOKEN
        case.call_and_validate(headers={**(case.headers or {}), "Authorization": f"Token {token}"})

    return test


globals().update(per_operation_tests(schema, load_spec(OCPI_SPEC), _conformance_test))
