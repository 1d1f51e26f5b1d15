"""marshmallow schemas mapping the wire representation to stored documents and back.

The spec has already validated every request; these map names, fill defaults and set
timestamps, one schema per resource.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, post_load, pre_dump, pre_load

from maeve_api.domain.emaid import normalize_emaid

RFC3339_SECONDS = "%Y-%m-%dT%H:%M:%SZ"


def utc_now() -> datetime:
    """The current UTC time at the millisecond precision every store keeps."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class _WireSchema(Schema):
    class Meta:
        unknown = EXCLUDE


class ChargeStationAuthSchema(_WireSchema):
    """``ChargeStationAuth`` ⇄ the stored auth document."""

    security_profile = fields.Integer(data_key="securityProfile", required=True)
    password_hash = fields.String(data_key="base64SHA256Password")
    invalid_username_allowed = fields.Boolean(data_key="invalidUsernameAllowed", load_default=False)


class TokenSchema(_WireSchema):
    """``Token`` ⇄ the stored token: the eMAID made canonical, ``lastUpdated`` set by the server."""

    country_code = fields.String(data_key="countryCode", required=True)
    party_id = fields.String(data_key="partyId", required=True)
    type = fields.String(required=True)
    uid = fields.String(required=True)
    contract_id = fields.String(data_key="contractId", required=True)
    visual_number = fields.String(data_key="visualNumber")
    issuer = fields.String(required=True)
    group_id = fields.String(data_key="groupId")
    valid = fields.Boolean(required=True)
    language_code = fields.String(data_key="languageCode")
    cache_mode = fields.String(data_key="cacheMode", required=True)
    # A client's lastUpdated has been validated by the spec and is ignored.
    last_updated = fields.DateTime(data_key="lastUpdated", format=RFC3339_SECONDS, dump_only=True)

    @post_load
    def _canonical(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["contract_id"] = normalize_emaid(data["contract_id"])
        data["emaid"] = data["contract_id"]
        data["last_updated"] = utc_now()
        return data

    @pre_dump
    def _emaid(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        # A partner's token keeps its contract id as sent; this API shows its canonical eMAID when it is one.
        return {**data, "contract_id": data["emaid"]} if data.get("emaid") else data


class _ConnectorSchema(_WireSchema):
    id = fields.String(required=True)
    standard = fields.String(required=True)
    format = fields.String(required=True)
    power_type = fields.String(required=True)
    max_voltage = fields.Integer(required=True)
    max_amperage = fields.Integer(required=True)
    last_updated = fields.DateTime(format=RFC3339_SECONDS, dump_only=True)


class _EvseSchema(_WireSchema):
    uid = fields.String(required=True)
    evse_id = fields.String()
    connectors = fields.List(fields.Nested(_ConnectorSchema), required=True)
    status = fields.String(dump_only=True)
    last_updated = fields.DateTime(format=RFC3339_SECONDS, dump_only=True)


class _GeoLocationSchema(_WireSchema):
    latitude = fields.String(required=True)
    longitude = fields.String(required=True)


def _without_nulls(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: _without_nulls(value) for key, value in data.items() if value is not None}
    if isinstance(data, list):
        return [_without_nulls(item) for item in data]
    return data


class LocationSchema(_WireSchema):
    """``Location`` ⇄ the stored location: null fields dropped, every EVSE UNKNOWN, all stamped now."""

    id = fields.String(required=True)
    country_code = fields.String(required=True)
    party_id = fields.String(required=True)
    name = fields.String()
    address = fields.String(required=True)
    city = fields.String(required=True)
    postal_code = fields.String()
    country = fields.String(required=True)
    coordinates = fields.Nested(_GeoLocationSchema, required=True)
    parking_type = fields.String()
    evses = fields.List(fields.Nested(_EvseSchema), load_default=list)
    # Absent means the configured default zone, applied when the location is published.
    time_zone = fields.String()
    last_updated = fields.DateTime(format=RFC3339_SECONDS, dump_only=True)

    @pre_load
    def _drop_nulls(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        result: dict[str, Any] = _without_nulls(data)
        return result

    @post_load
    def _stamp(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        now = utc_now()
        data["last_updated"] = now
        for evse in data["evses"]:
            evse["status"] = "UNKNOWN"
            evse["last_updated"] = now
            for connector in evse["connectors"]:
                connector["last_updated"] = now
        return data


CHARGE_STATION_AUTH = ChargeStationAuthSchema()
TOKEN = TokenSchema()
TOKENS = TokenSchema(many=True)
LOCATION = LocationSchema()
