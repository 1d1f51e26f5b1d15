"""Authorize, TransactionEvent and StartTransaction answers from the token store."""

from __future__ import annotations

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from tests.ocpp.conftest import connect

pytestmark = pytest.mark.anyio


def token(service, uid, *, valid=True, cache_mode="ALWAYS", contract_id="GB-TWK-012345678", group_id=None):
    body = {"countryCode": "GB", "partyId": "TWK", "type": "RFID", "uid": uid, "contractId": contract_id,
            "issuer": "Thoughtworks", "valid": valid, "cacheMode": cache_mode}
    if group_id:
        body["groupId"] = group_id
    assert service.post("/token", body).status_code == 201


async def authorize(station, id_token, token_type="ISO14443"):
    result = await station.call(call201.Authorize(id_token={"id_token": id_token, "type": token_type}),
                                suppress=False)
    return result.id_token_info


@pytest.fixture(scope="module")
def tokens(service):
    token(service, "VALID0001", group_id="GROUP-1")
    token(service, "INVALID01", valid=False)
    token(service, "NEVER0001", cache_mode="NEVER")
    token(service, "EMAID0001", contract_id="NL-EMS-000000001")
    return service


async def test_2_0_1_authorize_statuses(tokens):
    cs_id = tokens.register()
    async with connect(tokens, cs_id, boot=True) as station:
        valid = await authorize(station, "VALID0001")
        assert valid["status"] == "Accepted"
        assert valid["group_id_token"] == {"id_token": "GROUP-1", "type": "Central"}
        assert (await authorize(station, "INVALID01"))["status"] == "Invalid"
        assert (await authorize(station, "NOBODY"))["status"] == "Unknown"
        assert "cache_expiry_date_time" in await authorize(station, "NEVER0001")
        assert "cache_expiry_date_time" not in valid
        assert (await authorize(station, "", "NoAuthorization"))["status"] == "Accepted"


async def test_2_0_1_emaid_tokens_are_found_by_their_normalised_contract_id(tokens):
    cs_id = tokens.register()
    async with connect(tokens, cs_id, boot=True) as station:
        assert (await authorize(station, "nl-ems-000000001", "eMAID"))["status"] == "Accepted"
        assert (await authorize(station, "NLEMS000000001", "eMAID"))["status"] == "Accepted"
        assert (await authorize(station, "NL-EMS-999999999", "eMAID"))["status"] == "Unknown"


async def test_uids_are_matched_case_insensitively(tokens):
    cs_id = tokens.register()
    async with connect(tokens, cs_id, boot=True) as station:
        assert (await authorize(station, "valid0001"))["status"] == "Accepted"


async def test_transaction_event_carries_the_same_id_token_info(tokens):
    cs_id = tokens.register()
    async with connect(tokens, cs_id, boot=True) as station:
        result = await station.call(
            call201.TransactionEvent(
                event_type="Started", timestamp="2025-01-01T00:00:00Z", trigger_reason="Authorized", seq_no=0,
                transaction_info={"transaction_id": "tx-1"}, id_token={"id_token": "INVALID01", "type": "ISO14443"},
            ),
            suppress=False,
        )
        assert result.id_token_info["status"] == "Invalid"
        without = await station.call(
            call201.TransactionEvent(event_type="Updated", timestamp="2025-01-01T00:00:01Z",
                                     trigger_reason="MeterValuePeriodic", seq_no=1,
                                     transaction_info={"transaction_id": "tx-1"}),
            suppress=False,
        )
        assert without.id_token_info is None


async def test_1_6_authorize_and_start_transaction(tokens):
    cs_id = tokens.register()
    async with connect(tokens, cs_id, version="1.6", boot=True) as station:
        statuses = [
            (await station.call(call16.Authorize(id_tag=tag), suppress=False)).id_tag_info["status"]
            for tag in ("VALID0001", "INVALID01", "NOBODY")
        ]
        assert statuses == ["Accepted", "Invalid", "Invalid"]
        started = [
            await station.call(call16.StartTransaction(connector_id=1, id_tag=tag, meter_start=0,
                                                       timestamp="2025-01-01T00:00:00Z"), suppress=False)
            for tag in ("VALID0001", "VALID0001", "INVALID01")
        ]
        assert [s.id_tag_info["status"] for s in started] == ["Accepted", "Accepted", "Invalid"]
        assert len({s.transaction_id for s in started}) == 3
        stopped = await station.call(
            call16.StopTransaction(meter_stop=5, timestamp="2025-01-01T01:00:00Z",
                                   transaction_id=started[0].transaction_id, id_tag="VALID0001"),
            suppress=False,
        )
        assert stopped.id_tag_info["status"] == "Accepted"
