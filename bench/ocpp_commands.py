"""MongoDB commands per OCPP boot and per delivery, counted with pymongo's command monitoring.

Serves the OCPP endpoint in this process (one uvicorn server, as one gunicorn worker would) on nx-27017,
boots ``--stations`` lean OCPP 2.0.1 stations (basic auth), then stages one setting for each in the store
and lets them answer Accepted, and then holds them idle. Prints the commands of each phase by command and
collection, per boot and per delivery, with the poller's own queries counted apart:

    .venv/bin/python -m bench.ocpp_commands --stations 200
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import uvicorn
import websockets
from pymongo import monitoring

from bench.ocpp_fleet import seed_stations
from bench.seed import station_id
from bench.servers import Nx27017, free_port
from maeve_api.domain.charge_stations import staged_settings
from maeve_api.ocpp.app import create_ocpp_app
from maeve_api.settings import Settings
from maeve_api.storage import open_storage

SETTING = "Bench/Value"


class Commands(monitoring.CommandListener):
    """Counts the commands started, by ``command collection``; the poller's change queries apart."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        target = event.command.get(name)
        key = f"{name} {target}" if isinstance(target, str) else name
        filter_ = event.command.get("filter") or {}
        if name == "find" and target == "charge_station_runtime" and _is_poll(filter_):
            key = "poll (find charge_station_runtime)"
        elif name == "getMore":
            key = f"getMore {event.command.get('collection')}"
            if event.command.get("collection") == "charge_station_runtime":
                key = "poll (getMore charge_station_runtime)"
        self.counts[key] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def take(self) -> Counter[str]:
        counts, self.counts = self.counts, Counter()
        return counts


def _is_poll(filter_: dict[str, Any]) -> bool:
    text = json.dumps(filter_, default=str)
    return "changed_at" in text or "change_seq" in text


class Station:
    """One lean station: boots, answers SetVariables Accepted, records each value's arrival."""

    def __init__(self, url: str, number: int) -> None:
        self.cs_id = station_id(number)
        self.url = f"{url}/ws/{self.cs_id}"
        self.password = f"password-{number}"
        self.booted = asyncio.Event()
        self.values: list[str] = []
        self.ws: Any = None

    async def run(self) -> None:
        token = base64.b64encode(f"{self.cs_id}:{self.password}".encode()).decode()
        self.ws = await websockets.connect(self.url, subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                                           additional_headers={"Authorization": f"Basic {token}"},
                                           ping_interval=None, compression=None)
        boot = {"chargingStation": {"vendorName": "Bench", "model": "Lean"}, "reason": "PowerUp"}
        await self.ws.send(json.dumps([2, "boot", "BootNotification", boot]))
        async for text in self.ws:
            frame = json.loads(text)
            if frame[0] == 3 and frame[1] == "boot":
                self.booted.set()
            elif frame[0] == 2 and frame[2] == "SetVariables":
                results = []
                for item in frame[3]["setVariableData"]:
                    self.values.append(item["attributeValue"])
                    results.append({"attributeStatus": "Accepted", "component": item["component"],
                                     "variable": item["variable"]})
                await self.ws.send(json.dumps([3, frame[1], {"setVariableResult": results}]))
            elif frame[0] == 2:
                await self.ws.send(json.dumps([4, frame[1], "NotImplemented", "", {}]))


def _report(title: str, counts: Counter[str], per: int, unit: str, seconds: float) -> None:
    polls = sum(v for k, v in counts.items() if k.startswith("poll"))
    work = sum(v for k, v in counts.items() if not k.startswith("poll"))
    print(f"\n{title}: {work} commands for {per} {unit}s ({work / max(per, 1):.2f} per {unit}), "
          f"and {polls} poller queries over {seconds:.1f} s")
    for key, value in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {value:7d}  {value / max(per, 1):6.2f}  {key}")


async def _settle(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def measure(uri: str, stations: int, concurrency: int) -> None:
    url = f"{uri.rstrip('/')}/bench_commands"
    seed_stations(url, stations)
    staging = open_storage(url)  # opened before the listener: its own commands are not counted
    listener = Commands()
    monitoring.register(listener)
    port = free_port()
    settings = Settings(database_url=url, ocpp_port=port, log_level="warning")
    app = create_ocpp_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, ws="websockets", lifespan="on",
                                           log_level="warning"))
    serving = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    tasks: list[asyncio.Task[None]] = []
    try:
        fleet = [Station(f"ws://127.0.0.1:{port}", n) for n in range(stations)]
        await _settle(1.0)
        listener.take()
        started = time.monotonic()
        gate = asyncio.Semaphore(concurrency)

        async def boot(station: Station) -> None:
            async with gate:
                tasks.append(asyncio.ensure_future(station.run()))
                await station.booted.wait()

        await asyncio.gather(*(boot(s) for s in fleet))
        await _settle(2.0)  # the delivery pass after each boot
        _report("boot", listener.take(), stations, "boot", time.monotonic() - started)

        started = time.monotonic()
        for n, station in enumerate(fleet):
            staging.charge_stations.merge_settings(station.cs_id, staged_settings({SETTING: f"v-{n}"}))
        deadline = time.monotonic() + 120
        while sum(1 for s in fleet if s.values) < stations and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await _settle(2.0)  # the outcomes
        delivered = sum(1 for s in fleet if s.values)
        _report("delivery", listener.take(), delivered, "delivery", time.monotonic() - started)

        started = time.monotonic()
        await _settle(5.0)
        _report("idle", listener.take(), stations, "station", time.monotonic() - started)
    finally:
        for task in tasks:
            task.cancel()
        for station in fleet:
            if station.ws is not None:
                with contextlib.suppress(Exception):
                    await station.ws.close()
        server.should_exit = True
        await serving
        staging.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50, help="boots in flight at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        nx = Nx27017("commands", Path(directory))
        nx.start()
        try:
            asyncio.run(measure(nx.uri, args.stations, args.concurrency))
        finally:
            nx.stop()


if __name__ == "__main__":
    main()
