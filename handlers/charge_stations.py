"""Handlers for charge stations: registration, auth lookup, settings, certificates and triggers."""

from __future__ import annotations

from typing import Any

from maeve_api.domain.charge_stations import staged_certificates, staged_settings
from maeve_api.domain.schemas import CHARGE_STATION_AUTH
from maeve_api.ocpp import readback
from maeve_api.storage import NotFound
from maeve_api.web.context import read, storage


def register_charge_station(cs_id: str, body: dict[str, Any]) -> tuple[None, int]:
    storage().charge_stations.put_auth(cs_id, CHARGE_STATION_AUTH.load(body))
    return None, 201


async def lookup_charge_station_auth(cs_id: str) -> tuple[dict[str, Any], int]:
    auth = await read(storage().charge_stations.find_auth, cs_id)
    if auth is None:
        raise NotFound("charge station", cs_id)
    return CHARGE_STATION_AUTH.dump(auth), 200


def reconfigure_charge_station(cs_id: str, body: dict[str, str]) -> tuple[None, int]:
    storage().charge_stations.merge_settings(cs_id, staged_settings(body))
    return None, 200


def install_charge_station_certificates(cs_id: str, body: dict[str, Any]) -> tuple[None, int]:
    storage().charge_stations.merge_install_certificates(cs_id, staged_certificates(body["certificates"]))
    return None, 200


def trigger_charge_station(cs_id: str, body: dict[str, str]) -> tuple[None, int]:
    storage().charge_stations.put_trigger(cs_id, {"message": body["trigger"], "status": "Pending"})
    return None, 200


def lookup_charge_station(cs_id: str) -> tuple[dict[str, Any], int]:
    return readback.charge_station(storage(), cs_id), 200


def list_charge_stations(offset: int = 0, limit: int = 20) -> tuple[list[dict[str, Any]], int]:
    return readback.charge_stations(storage(), offset, limit), 200
