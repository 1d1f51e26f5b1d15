"""Delivering what the API stages to one connected station, and storing each item's outcome.

Each connection has one delivery task. It runs a pass on connect (once the station has booted),
after every boot, when the worker's poller sees a change for the station and when a retry falls due.
The store is the source of truth: a pass reads the station's items and sends those Pending and due.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from ocpp.exceptions import OCPPError
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from maeve_api.ocpp import names
from maeve_api.ocpp.auth import password_hash
from maeve_api.ocpp.connection import Closed
from maeve_api.settings import Settings
from maeve_api.storage import Storage, StorageError
from maeve_api.storage.base import Document

log = logging.getLogger(__name__)
T = TypeVar("T")

ISO15118_VENDOR = "org.openchargealliance.iso15118pnc"
CERTIFICATE_TYPES = {
    "V2G": "V2GRootCertificate",
    "MO": "MORootCertificate",
    "CSMS": "CSMSRootCertificate",
    "MF": "ManufacturerRootCertificate",
}
#: 1.6 security extension's InstallCertificate takes these two natively; the others go through DataTransfer.
V16_NATIVE_CERTIFICATES = {"CSMS": "CentralSystemRootCertificate", "MF": "ManufacturerRootCertificate"}
V16_NATIVE_TRIGGERS = {
    "BootNotification",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
}
MAX_CERTIFICATE = 5500
#: SetVariables items per message.
BATCH = 50
SETTING_STATUSES = {"Accepted": "Accepted", "Rejected": "Rejected", "RebootRequired": "RebootRequired"}
NOT_SUPPORTED = {"UnknownComponent", "UnknownVariable", "NotSupportedAttributeType", "NotSupported"}


def utcnow() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


async def in_thread(call: Callable[..., T], *args: Any) -> T:
    """Run a store call off the event loop: every station of the worker shares the loop."""
    return await asyncio.to_thread(call, *args)


#: Most stations whose staged items are read in one query.
READ_BATCH = 500


class DeliveryReader:
    """Reads the staged items of this worker's stations: the stations that ask while a read is in flight are
    read together by the next one, one query per kind of item (as many as a boot storm brings at once)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._waiting: dict[str, list[asyncio.Future[Document]]] = {}
        self._reading = False
        self._task: asyncio.Future[None] | None = None

    async def read(self, cs_id: str) -> Document:
        """The station's items, read after this call began."""
        future: asyncio.Future[Document] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(cs_id, []).append(future)
        if not self._reading:
            self._reading = True
            self._task = asyncio.ensure_future(self._read_all())
        return await future

    async def _read_all(self) -> None:
        try:
            while self._waiting:
                ids = list(self._waiting)[:READ_BATCH]
                batch = {cs_id: self._waiting.pop(cs_id) for cs_id in ids}
                try:
                    found = await in_thread(self.storage.ocpp.deliveries_of, ids)
                except Exception as exc:
                    for futures in batch.values():
                        for future in futures:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                except BaseException:
                    for futures in batch.values():
                        for future in futures:
                            future.cancel()
                    raise
                for cs_id, futures in batch.items():
                    for n, future in enumerate(futures):
                        if not future.done():  # each caller changes its own copy
                            future.set_result(found[cs_id] if n == 0 else copy.deepcopy(found[cs_id]))
        finally:
            self._reading = False


class Failure(Exception):
    """The station did not answer, or answered with a CallError; counts as one attempt."""


class Session:
    """One connected station on this worker: its connection, its delivery task and what wakes it."""

    def __init__(self, *, cs_id: str, version: str, connection_id: str, charge_point: Any, storage: Storage,
                 settings: Settings, booted: bool, seq: int,
                 read: Callable[[str], Awaitable[Document]] | None = None) -> None:
        self.cs_id = cs_id
        self.version = version
        self.connection_id = connection_id
        self.charge_point = charge_point
        self.storage = storage
        self.settings = settings
        self.booted = booted
        self.seen_seq = seq
        self._read = read or (lambda cs_id: in_thread(storage.ocpp.deliveries, cs_id))
        #: Whether an outcome of this pass found its item staged again: the pass's items are then read again.
        self._stale = False
        self._wake = asyncio.Event()
        self._reset_sent: set[tuple[str, str | None]] = set()
        self.task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def booted_now(self) -> None:
        self.booted = True
        self._reset_sent.clear()
        self._wake.set()

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _run(self) -> None:
        if self.booted:
            self._wake.set()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self.booted:
                continue
            try:
                next_due = await self.deliver()
            except Closed:
                return
            except StorageError as exc:
                log.warning("delivery to %s paused: store unavailable (%s)", self.cs_id, type(exc).__name__)
                next_due = utcnow() + timedelta(seconds=1)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery to %s failed", self.cs_id)
                next_due = utcnow() + timedelta(seconds=self.settings.ocpp_retry_seconds)
            if next_due is not None and not self._wake.is_set():
                asyncio.get_running_loop().call_later(
                    max(0.0, (next_due - utcnow()).total_seconds()), self._wake.set
                )

    async def deliver(self) -> datetime | None:
        """One pass: send what is Pending and due; returns when the next retry falls due, if any."""
        state = await self._read(self.cs_id)
        self._stale = False
        now = utcnow()
        settings = [s for s in state["settings"] if s["status"] == "Pending" and s["due_at"] <= now]
        if settings:
            await (self._settings_v201(settings) if self.version == "2.0.1" else self._settings_v16(settings))
        for certificate in state["certificates"]:
            if certificate["status"] == "Pending" and certificate["due_at"] <= now:
                await self._certificate(certificate)
        trigger = state["trigger"]
        if trigger is not None and trigger["status"] == "Pending" and trigger["due_at"] <= now:
            await self._trigger(trigger)
        # Each outcome stored was applied to the items read; an item staged again meanwhile means they are out of
        # date (and its change wakes this task again).
        if self._stale:
            state = await self._read(self.cs_id)
        await self._reset_if_needed(state["settings"])
        items = [*state["settings"], *state["certificates"], *([state["trigger"]] if state["trigger"] else [])]
        due = [item["due_at"] for item in items if item["status"] == "Pending"]
        return min(due) if due else None

    # Outcomes.

    async def _settle(self, kind: str, key: str, item: Document, status: str, detail: str | None = None) -> bool:
        update: dict[str, Any] = {"status": status, "detail": detail, "updated_at": utcnow()}
        return await self._store(kind, key, item, update)

    async def _store(self, kind: str, key: str, item: Document, update: dict[str, Any]) -> bool:
        """Store an outcome of ``item`` and apply it to the item as read; whether it was still at its revision."""
        settled = await in_thread(self.storage.ocpp.settle, self.cs_id, kind, key, item.get("revision"), update)
        if settled:
            for field_name, value in update.items():
                if value is None:
                    item.pop(field_name, None)
                else:
                    item[field_name] = value
        else:
            self._stale = True
        return settled

    async def _failed_attempt(self, kind: str, key: str, item: Document, reason: str) -> None:
        attempts = item["attempts"] + 1
        now = utcnow()
        if attempts >= self.settings.ocpp_max_attempts:
            update: dict[str, Any] = {"status": "Failed", "attempts": attempts, "detail": reason, "updated_at": now}
        else:
            delay = self.settings.ocpp_retry_seconds * 2 ** (attempts - 1)
            update = {"attempts": attempts, "due_at": now + timedelta(seconds=delay), "detail": reason,
                      "updated_at": now}
        await self._store(kind, key, item, update)
        log.info("%s %r of %s: attempt %d failed: %s", kind, key, self.cs_id, attempts, reason)

    async def _call(self, payload: Any) -> Any:
        try:
            return await self.charge_point.call(payload, suppress=False)
        except TimeoutError:
            raise Failure(f"no answer within {self.settings.ocpp_call_timeout:g} s") from None
        except OCPPError as exc:
            raise Failure(f"CallError {exc.code}") from None

    # Settings.

    async def _settings_v201(self, settings: list[Document]) -> None:
        requests: dict[tuple[Any, ...], Document] = {}
        data = []
        for setting in settings:
            try:
                item = names.set_variable_data(setting["name"], setting["value"])
            except names.UnmappableName as exc:
                await self._settle("setting", setting["name"], setting, "Rejected", str(exc))
                continue
            key = names.reference_key(item["component"], item["variable"], item["attribute_type"])
            if key in requests:  # two names for one variable: the later one waits for the next pass
                continue
            requests[key] = setting
            data.append(item)
        for start in range(0, len(data), BATCH):
            batch = data[start : start + BATCH]
            keys = [names.reference_key(i["component"], i["variable"], i["attribute_type"]) for i in batch]
            try:
                result = await self._call(call201.SetVariables(set_variable_data=batch))
            except Failure as exc:
                for key in keys:
                    await self._failed_attempt("setting", requests[key]["name"], requests[key], str(exc))
                continue
            answered = set()
            for entry in result.set_variable_result:
                key = names.reference_key(entry["component"], entry["variable"], entry.get("attribute_type"))
                setting = requests.get(key)
                if setting is None or key not in keys or key in answered:
                    continue
                answered.add(key)
                status = entry["attribute_status"]
                reason = (entry.get("attribute_status_info") or {}).get("reason_code")
                await self._setting_outcome(setting, status, reason)
            for key in keys:
                if key not in answered:
                    await self._failed_attempt("setting", requests[key]["name"], requests[key], "no result for it")

    async def _settings_v16(self, settings: list[Document]) -> None:
        for setting in settings:
            try:
                names.check_v16(setting["name"], setting["value"])
            except names.UnmappableName as exc:
                await self._settle("setting", setting["name"], setting, "Rejected", str(exc))
                continue
            try:
                result = await self._call(call16.ChangeConfiguration(key=setting["name"], value=setting["value"]))
            except Failure as exc:
                await self._failed_attempt("setting", setting["name"], setting, str(exc))
                continue
            await self._setting_outcome(setting, result.status, None)

    async def _setting_outcome(self, setting: Document, status: str, reason: str | None) -> None:
        if status in SETTING_STATUSES:
            stored, detail = SETTING_STATUSES[status], reason
        elif status in NOT_SUPPORTED:
            stored, detail = "NotSupported", status
        else:
            stored, detail = "Rejected", status
        settled = await self._settle("setting", setting["name"], setting, stored, detail)
        if settled and stored in ("Accepted", "RebootRequired") and names.is_secret(setting["name"]):
            # The station uses its new password from its next connect on.
            await in_thread(self.storage.ocpp.set_password_hash, self.cs_id, password_hash(setting["value"]))

    async def _reset_if_needed(self, settings: list[Document]) -> None:
        if any(s["status"] == "Pending" for s in settings):
            return
        waiting = {(s["name"], s.get("revision")) for s in settings if s["status"] == "RebootRequired"}
        if not waiting or waiting <= self._reset_sent:
            return
        self._reset_sent |= waiting
        payload = call201.Reset(type="OnIdle") if self.version == "2.0.1" else call16.Reset(type="Soft")
        try:
            result = await self._call(payload)
        except Failure as exc:
            log.warning("Reset of %s failed: %s", self.cs_id, exc)
            return
        log.info("Reset of %s to apply %d settings: %s", self.cs_id, len(waiting), result.status)

    # Certificates.

    async def _certificate(self, certificate: Document) -> None:
        key = certificate["certificate_id"]
        pem = certificate["pem"].replace("\\r\\n", "\n").replace("\\n", "\n")
        if len(pem) > MAX_CERTIFICATE:
            await self._settle("certificate", key, certificate, "Rejected", f"longer than {MAX_CERTIFICATE} characters")
            return
        if certificate["type"] not in CERTIFICATE_TYPES:
            await self._settle("certificate", key, certificate, "Rejected", "unknown certificate type")
            return
        try:
            if self.version == "2.0.1":
                result = await self._call(
                    call201.InstallCertificate(certificate_type=CERTIFICATE_TYPES[certificate["type"]], certificate=pem)
                )
                status = result.status
            elif certificate["type"] in V16_NATIVE_CERTIFICATES:
                result = await self._call(
                    call16.InstallCertificate(
                        certificate_type=V16_NATIVE_CERTIFICATES[certificate["type"]], certificate=pem
                    )
                )
                status = result.status
            else:
                status = await self._data_transfer(
                    "InstallCertificate",
                    {"certificateType": CERTIFICATE_TYPES[certificate["type"]], "certificate": pem},
                )
        except Failure as exc:
            await self._failed_attempt("certificate", key, certificate, str(exc))
            return
        if status == "Failed":
            await self._failed_attempt("certificate", key, certificate, "the station answered Failed")
        elif status in ("Accepted", "Rejected"):
            await self._settle("certificate", key, certificate, status)
        else:
            await self._settle("certificate", key, certificate, "NotSupported", status)

    async def _data_transfer(self, message_id: str, payload: dict[str, Any]) -> str:
        """An ISO 15118 message wrapped in a 1.6 DataTransfer: the inner status, or the DataTransfer's refusal."""
        result = await self._call(
            call16.DataTransfer(vendor_id=ISO15118_VENDOR, message_id=message_id, data=json.dumps(payload))
        )
        if result.status != "Accepted":
            return str(result.status)
        try:
            inner = json.loads(result.data) if result.data else {}
        except ValueError:
            return "Rejected"
        status = inner.get("status") if isinstance(inner, dict) else None
        return status if isinstance(status, str) and len(status) <= 50 else "Accepted"

    # Trigger.

    async def _trigger(self, trigger: Document) -> None:
        message = trigger["message"]
        try:
            if self.version == "2.0.1":
                status = (await self._call(call201.TriggerMessage(requested_message=message))).status
            elif message in V16_NATIVE_TRIGGERS:
                status = (await self._call(call16.TriggerMessage(requested_message=message))).status
            else:
                status = await self._data_transfer("TriggerMessage", {"requestedMessage": message})
        except Failure as exc:
            await self._failed_attempt("trigger", message, trigger, str(exc))
            return
        if status in ("Accepted", "Rejected", "NotImplemented"):
            await self._settle("trigger", message, trigger, status)
        elif status in ("UnknownVendorId", "UnknownMessageId"):
            await self._settle("trigger", message, trigger, "NotImplemented", status)
        else:
            await self._settle("trigger", message, trigger, "Rejected", status)
