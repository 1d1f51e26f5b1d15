"""What the endpoint answers to station messages, per OCPP version, with the ``ocpp`` library.

One ChargePoint object per connection. Handlers never ``call()`` the station (that would block the
receive loop): deliveries run in the session's own task. Store calls run in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.messages import CallError, MessageType, unpack
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from maeve_api.ocpp import authorize
from maeve_api.ocpp.ca import CertificateAuthority, CsrRefused
from maeve_api.ocpp.delivery import Session, in_thread
from maeve_api.storage import Storage

log = logging.getLogger(__name__)

#: The library logs every frame (our SetVariables included, station passwords and all) and echoes payloads
#: in its error records: it gets a logger that records nothing.
SILENT = logging.getLogger("maeve_api.ocpp.library")
SILENT.addHandler(logging.NullHandler())
SILENT.propagate = False
SILENT.setLevel(logging.CRITICAL + 1)

#: last_seen is written at most this often per station.
TOUCH_SECONDS = 60.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _unhandled(version: str, action: str) -> tuple[str, str]:
    """The CallError of a call we have no handler for (the library swaps these two): an action of the
    version is recognised but not supported; anything else is not known to us."""
    actions: Any = Action16 if version == "1.6" else Action201
    try:
        actions(action)
    except ValueError:
        return "NotImplemented", "unknown action"
    return "NotSupported", "action not supported"


class _Station:
    """What both versions share: routing with our own error handling, the session and the store."""

    session: Session
    storage: Storage
    heartbeat_interval: int
    ca: CertificateAuthority | None
    #: Records that the station sent something now (its last_seen, written by the worker in batches).
    seen: Callable[[str], None]
    _last_touch: float = 0.0

    async def route_message(self, raw_msg: str) -> None:
        """The library's routing, but a frame that is not OCPP-J gets a CallError instead of being dropped, and no
        error echoes the station's payload back."""
        cp: Any = self
        try:
            msg = unpack(raw_msg)
        except OCPPError as error:
            await cp._send(CallError("-1", error.code, error.description, {}).to_json())
            return
        self._touch()
        if msg.message_type_id == MessageType.Call:
            if not isinstance(msg.unique_id, str) or not isinstance(msg.action, str) or not isinstance(
                msg.payload, dict
            ):
                await cp._send(CallError(str(msg.unique_id)[:36], "FormatViolation" if cp._ocpp_version != "1.6"
                                         else "FormationViolation", "malformed call", {}).to_json())
                return
            if msg.action not in cp.route_map:
                await cp._send(CallError(msg.unique_id, *_unhandled(cp._ocpp_version, msg.action), {}).to_json())
                return
            try:
                await cp._handle_call(msg)
            except OCPPError as error:
                await cp._send(CallError(msg.unique_id, error.code, error.description, {}).to_json())
        elif msg.message_type_id in (MessageType.CallResult, MessageType.CallError):
            cp._response_queue.put_nowait(msg)

    def _touch(self) -> None:
        now = time.monotonic()
        if now - self._last_touch < TOUCH_SECONDS:
            return
        self._last_touch = now
        self.seen(self.session.cs_id)

    def connected_now(self) -> None:
        """The connection was recorded with last_seen = now: the next touch is due a full period later."""
        self._last_touch = time.monotonic()

    async def _record_boot(self, boot: dict[str, Any]) -> None:
        await in_thread(self.storage.ocpp.record_boot, self.session.cs_id, boot, datetime.now(UTC))

    def _sign(self, csr: str) -> str | None:
        """The signed chain for a CSR, or None if it is refused or no CA is configured."""
        if self.ca is None:
            return None
        try:
            return self.ca.sign(csr, self.session.cs_id)
        except CsrRefused as exc:
            log.info("SignCertificate of %s refused: %s", self.session.cs_id, exc)
            return None

    async def _send_signed(self, payload: Any) -> None:
        try:
            result = await self.call(payload, suppress=False)  # type: ignore[attr-defined]
            log.info("CertificateSigned to %s: %s", self.session.cs_id, result.status)
        except (OCPPError, TimeoutError) as exc:
            log.warning("CertificateSigned to %s failed: %s", self.session.cs_id, type(exc).__name__)
        except Exception:
            log.exception("CertificateSigned to %s failed", self.session.cs_id)


class Station201(_Station, ChargePoint201):
    """An OCPP 2.0.1 station."""

    _signed: str | None = None

    @on("BootNotification")
    async def on_boot_notification(self, charging_station: dict[str, Any], reason: str, **_: Any) -> Any:
        boot = {"vendor": charging_station["vendor_name"], "model": charging_station["model"]}
        for source, target in (("serial_number", "serial_number"), ("firmware_version", "firmware_version")):
            if charging_station.get(source) is not None:
                boot[target] = charging_station[source]
        await self._record_boot(boot)
        return result201.BootNotification(current_time=_now(), interval=self.heartbeat_interval, status="Accepted")

    @after("BootNotification")
    def after_boot_notification(self, **_: Any) -> None:
        self.session.booted_now()

    @on("Heartbeat")
    def on_heartbeat(self, **_: Any) -> Any:
        return result201.Heartbeat(current_time=_now())

    @on("StatusNotification")
    def on_status_notification(self, **_: Any) -> Any:
        return result201.StatusNotification()

    @on("NotifyEvent")
    def on_notify_event(self, **_: Any) -> Any:
        return result201.NotifyEvent()

    @on("NotifyReport")
    def on_notify_report(self, **_: Any) -> Any:
        return result201.NotifyReport()

    @on("MeterValues")
    def on_meter_values(self, **_: Any) -> Any:
        return result201.MeterValues()

    @on("SecurityEventNotification")
    def on_security_event_notification(self, **_: Any) -> Any:
        return result201.SecurityEventNotification()

    @on("FirmwareStatusNotification")
    def on_firmware_status_notification(self, **_: Any) -> Any:
        return result201.FirmwareStatusNotification()

    @on("LogStatusNotification")
    def on_log_status_notification(self, **_: Any) -> Any:
        return result201.LogStatusNotification()

    @on("DataTransfer")
    def on_data_transfer(self, **_: Any) -> Any:
        return result201.DataTransfer(status="UnknownVendorId")

    @on("Authorize")
    async def on_authorize(self, id_token: dict[str, Any], **_: Any) -> Any:
        info = await in_thread(authorize.id_token_info, self.storage, id_token)
        return result201.Authorize(id_token_info=info)

    @on("TransactionEvent")
    async def on_transaction_event(self, id_token: dict[str, Any] | None = None, **_: Any) -> Any:
        if id_token is None:
            return result201.TransactionEvent()
        info = await in_thread(authorize.id_token_info, self.storage, id_token)
        return result201.TransactionEvent(id_token_info=info)

    @on("SignCertificate")
    async def on_sign_certificate(self, csr: str, certificate_type: str | None = None, **_: Any) -> Any:
        chain = None
        if certificate_type in (None, "ChargingStationCertificate"):
            chain = await asyncio.to_thread(self._sign, csr)
        self._signed = chain
        return result201.SignCertificate(status="Accepted" if chain else "Rejected")

    @after("SignCertificate")
    async def after_sign_certificate(self, **_: Any) -> None:
        chain, self._signed = self._signed, None
        if chain:
            await self._send_signed(
                call201.CertificateSigned(certificate_chain=chain, certificate_type="ChargingStationCertificate")
            )


class Station16(_Station, ChargePoint16):
    """An OCPP 1.6 station (with the security extension's messages)."""

    _signed: str | None = None

    @on("BootNotification")
    async def on_boot_notification(self, charge_point_vendor: str, charge_point_model: str, **rest: Any) -> Any:
        boot = {"vendor": charge_point_vendor, "model": charge_point_model}
        serial = rest.get("charge_point_serial_number") or rest.get("charge_box_serial_number")
        if serial is not None:
            boot["serial_number"] = serial
        if rest.get("firmware_version") is not None:
            boot["firmware_version"] = rest["firmware_version"]
        await self._record_boot(boot)
        return result16.BootNotification(current_time=_now(), interval=self.heartbeat_interval, status="Accepted")

    @after("BootNotification")
    def after_boot_notification(self, **_: Any) -> None:
        self.session.booted_now()

    @on("Heartbeat")
    def on_heartbeat(self, **_: Any) -> Any:
        return result16.Heartbeat(current_time=_now())

    @on("StatusNotification")
    def on_status_notification(self, **_: Any) -> Any:
        return result16.StatusNotification()

    @on("MeterValues")
    def on_meter_values(self, **_: Any) -> Any:
        return result16.MeterValues()

    @on("DiagnosticsStatusNotification")
    def on_diagnostics_status_notification(self, **_: Any) -> Any:
        return result16.DiagnosticsStatusNotification()

    @on("FirmwareStatusNotification")
    def on_firmware_status_notification(self, **_: Any) -> Any:
        return result16.FirmwareStatusNotification()

    @on("SecurityEventNotification")
    def on_security_event_notification(self, **_: Any) -> Any:
        return result16.SecurityEventNotification()

    @on("LogStatusNotification")
    def on_log_status_notification(self, **_: Any) -> Any:
        return result16.LogStatusNotification()

    @on("SignedFirmwareStatusNotification")
    def on_signed_firmware_status_notification(self, **_: Any) -> Any:
        return result16.SignedFirmwareStatusNotification()

    @on("DataTransfer")
    def on_data_transfer(self, **_: Any) -> Any:
        return result16.DataTransfer(status="UnknownVendorId")

    @on("Authorize")
    async def on_authorize(self, id_tag: str, **_: Any) -> Any:
        return result16.Authorize(id_tag_info=await in_thread(authorize.id_tag_info, self.storage, id_tag))

    @on("StartTransaction")
    async def on_start_transaction(self, id_tag: str, **_: Any) -> Any:
        info = await in_thread(authorize.id_tag_info, self.storage, id_tag)
        transaction_id = await in_thread(self.storage.ocpp.next_transaction_id)
        return result16.StartTransaction(transaction_id=transaction_id, id_tag_info=info)

    @on("StopTransaction")
    async def on_stop_transaction(self, id_tag: str | None = None, **_: Any) -> Any:
        if id_tag is None:
            return result16.StopTransaction()
        return result16.StopTransaction(id_tag_info=await in_thread(authorize.id_tag_info, self.storage, id_tag))

    @on("SignCertificate")
    async def on_sign_certificate(self, csr: str, **_: Any) -> Any:
        self._signed = await asyncio.to_thread(self._sign, csr)
        return result16.SignCertificate(status="Accepted" if self._signed else "Rejected")

    @after("SignCertificate")
    async def after_sign_certificate(self, **_: Any) -> None:
        chain, self._signed = self._signed, None
        if chain:
            await self._send_signed(call16.CertificateSigned(certificate_chain=chain))

