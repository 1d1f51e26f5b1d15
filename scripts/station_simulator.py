"""A charge station simulator: connects to the OCPP endpoint, boots, and answers what the CSMS sends.

    python scripts/station_simulator.py cs001 my-password [--url ws://127.0.0.1:9310] [--version 2.0.1|1.6]

It accepts every setting (answering RebootRequired for names given with --reboot-required), certificate
and trigger, reboots (a new BootNotification) when asked to reset, and prints every message it gets.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Station201(ChargePoint201):
    reboot_required: ClassVar[set[str]] = set()
    rebooting = asyncio.Event()

    @on("SetVariables")
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in set_variable_data:
            name = f"{item['component']['name']}/{item['variable']['name']}"
            status = "RebootRequired" if name in self.reboot_required else "Accepted"
            print(f"<- SetVariables {name} = {item['attribute_value']!r}: {status}")
            results.append({k: item[k] for k in ("component", "variable") } | {
                "attribute_type": item.get("attribute_type", "Actual"), "attribute_status": status})
        return result201.SetVariables(set_variable_result=results)

    @on("Reset")
    def on_reset(self, type: str, **_: Any) -> Any:
        print(f"<- Reset {type}: rebooting")
        self.rebooting.set()
        return result201.Reset(status="Accepted")

    @on("InstallCertificate")
    def on_install_certificate(self, certificate_type: str, **_: Any) -> Any:
        print(f"<- InstallCertificate {certificate_type}: Accepted")
        return result201.InstallCertificate(status="Accepted")

    @on("TriggerMessage")
    def on_trigger_message(self, requested_message: str, **_: Any) -> Any:
        print(f"<- TriggerMessage {requested_message}: Accepted")
        return result201.TriggerMessage(status="Accepted")

    async def boot(self) -> None:
        result = await self.call(call201.BootNotification(
            charging_station={"vendor_name": "Simulator", "model": "Sim-1", "serial_number": "SIM-0001",
                              "firmware_version": "1.0"},
            reason="PowerUp"))
        print(f"-> BootNotification: {result.status}, heartbeat every {result.interval} s")


class Station16(ChargePoint16):
    reboot_required: ClassVar[set[str]] = set()
    rebooting = asyncio.Event()

    @on("ChangeConfiguration")
    def on_change_configuration(self, key: str, value: str, **_: Any) -> Any:
        status = "RebootRequired" if key in self.reboot_required else "Accepted"
        print(f"<- ChangeConfiguration {key} = {value!r}: {status}")
        return result16.ChangeConfiguration(status=status)

    @on("Reset")
    def on_reset(self, type: str, **_: Any) -> Any:
        print(f"<- Reset {type}: rebooting")
        self.rebooting.set()
        return result16.Reset(status="Accepted")

    @on("TriggerMessage")
    def on_trigger_message(self, requested_message: str, **_: Any) -> Any:
        print(f"<- TriggerMessage {requested_message}: Accepted")
        return result16.TriggerMessage(status="Accepted")

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None, **_: Any) -> Any:
        print(f"<- DataTransfer {vendor_id} {message_id}: Accepted")
        return result16.DataTransfer(status="Accepted", data='{"status": "Accepted"}')

    async def boot(self) -> None:
        result = await self.call(call16.BootNotification(
            charge_point_vendor="Simulator", charge_point_model="Sim-1", charge_point_serial_number="SIM-0001",
            firmware_version="1.0"))
        print(f"-> BootNotification: {result.status}, heartbeat every {result.interval} s")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cs_id")
    parser.add_argument("password")
    parser.add_argument("--url", default="ws://127.0.0.1:9310")
    parser.add_argument("--version", choices=("2.0.1", "1.6"), default="2.0.1")
    parser.add_argument("--reboot-required", action="append", default=[], metavar="NAME")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (default: run until ^C)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    credentials = base64.b64encode(f"{args.cs_id}:{args.password}".encode()).decode()
    station_class: Any = Station201 if args.version == "2.0.1" else Station16
    station_class.reboot_required = set(args.reboot_required)
    async with websockets.connect(
        f"{args.url}/ws/{quote(args.cs_id, safe='')}",
        subprotocols=[f"ocpp{args.version}"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Basic {credentials}"},
    ) as ws:
        print(f"connected as {args.cs_id} with {ws.subprotocol}")
        station = station_class(args.cs_id, ws)
        receiving = asyncio.create_task(station.start())
        await station.boot()
        deadline = asyncio.get_running_loop().time() + args.seconds if args.seconds else None
        while deadline is None or asyncio.get_running_loop().time() < deadline:
            try:
                await asyncio.wait_for(station.rebooting.wait(), 0.2)
            except TimeoutError:
                continue
            station.rebooting.clear()
            await asyncio.sleep(0.2)
            await station.boot()
        receiving.cancel()


if __name__ == "__main__":
    asyncio.run(main())
