"""What the internal API shows of a station's connection and of the outcome of what was staged for it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from maeve_api.ocpp.names import is_secret
from maeve_api.storage import NotFound, Storage
from maeve_api.storage.base import Document

SECRET_VALUE = "***"


def _time(value: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, as the store keeps them."""
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _item(item: Document, shown: dict[str, Any]) -> dict[str, Any]:
    shown["status"] = item["status"]
    if item.get("detail"):
        shown["detail"] = item["detail"]
    if item.get("updated_at") is not None:
        shown["updated"] = _time(item["updated_at"])
    return shown


def charge_station(storage: Storage, cs_id: str) -> dict[str, Any]:
    """The ``ChargeStation`` of the spec; raises NotFound for an unknown station."""
    auth = storage.charge_stations.find_auth(cs_id)
    if auth is None:
        raise NotFound("charge station", cs_id)
    runtime = storage.ocpp.runtime(cs_id) or {}
    deliveries = storage.ocpp.deliveries(cs_id)
    shown: dict[str, Any] = {
        "securityProfile": auth["security_profile"],
        "invalidUsernameAllowed": auth["invalid_username_allowed"],
        "connected": "connection" in runtime,
    }
    if "ocpp_version" in runtime:
        shown["ocppVersion"] = runtime["ocpp_version"]
    for key, name in (("last_seen", "lastSeen"), ("last_boot", "lastBoot")):
        if key in runtime:
            shown[name] = _time(runtime[key])
    if "vendor" in runtime:
        boot = {"vendor": runtime["vendor"], "model": runtime.get("model", "")}
        for key, name in (("serial_number", "serialNumber"), ("firmware_version", "firmwareVersion")):
            if key in runtime:
                boot[name] = runtime[key]
        shown["bootInfo"] = boot
    shown["settings"] = {
        s["name"]: _item(s, {"value": SECRET_VALUE if is_secret(s["name"]) else s["value"]})
        for s in deliveries["settings"]
    }
    shown["certificates"] = [
        _item(c, {"id": c["certificate_id"], "type": c["type"]}) for c in deliveries["certificates"]
    ]
    if deliveries["trigger"] is not None:
        shown["trigger"] = _item(deliveries["trigger"], {"message": deliveries["trigger"]["message"]})
    return shown


def charge_stations(storage: Storage, offset: int, limit: int) -> list[dict[str, Any]]:
    """A page of ``ChargeStationSummary``."""
    page = []
    for station in storage.ocpp.stations(offset, limit):
        shown: dict[str, Any] = {"csId": station["cs_id"], "connected": station["connected"]}
        if "ocpp_version" in station:
            shown["ocppVersion"] = station["ocpp_version"]
        if "last_seen" in station:
            shown["lastSeen"] = _time(station["last_seen"])
        shown["pending"] = station["pending"]
        page.append(shown)
    return page
