"""A lean OCPP 2.0.1 station fleet for the benchmark: raw OCPP-J frames over ``websockets``, no ChargePoint.

One fleet process plays ``--count`` stations from ``--first`` on (``bench.seed.station_id`` ids, basic auth with
``bench.seed`` passwords). Each station connects, sends BootNotification, heartbeats at the interval the
answer gives, answers SetVariables Accepted (recording when each value arrived and how often) and anything
else NotImplemented, boots again after a CallError answer to its BootNotification, and reconnects with a
jittered back-off when its connection drops. The process reads
commands from stdin, one a line, and answers each with one JSON line on stdout:

    report   what it has seen so far (connections, boots, errors, arrivals, its own CPU time)
    stop     close every connection and exit

    .venv/bin/python -m bench.fleet --url ws://127.0.0.1:9310 --first 0 --count 5000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import websockets

from bench.seed import station_id

#: Upgrades in flight at once per fleet process: a boot storm through a load balancer, not a SYN flood.
HANDSHAKES_IN_FLIGHT = 1000
RECONNECT_SECONDS = (0.5, 3.0)


def raise_open_files_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (one descriptor per connection); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


@dataclass
class Fleet:
    url: str
    ids: list[tuple[str, str]]  # (station id, password)
    connected: int = 0
    connects: int = 0
    first_connect: float | None = None
    last_boot: float | None = None
    booted: set[str] = field(default_factory=set)
    errors: Counter[str] = field(default_factory=Counter)
    refused: int = 0  # connection refused: the server is down (the restart scenario)
    arrivals: dict[str, list[float]] = field(default_factory=dict)  # value -> [first arrival, times received]
    heartbeats: int = 0
    stopping: bool = False

    def report(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "connected": self.connected,
            "connects": self.connects,
            "booted": len(self.booted),
            "first_connect": self.first_connect,
            "last_boot": self.last_boot,
            "errors": dict(self.errors),
            "refused": self.refused,
            "heartbeats": self.heartbeats,
            "arrivals": self.arrivals,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "max_rss_kb": usage.ru_maxrss,
        }

    async def station(self, cs_id: str, password: str, handshakes: asyncio.Semaphore) -> None:
        auth = base64.b64encode(f"{cs_id}:{password}".encode()).decode()
        while not self.stopping:
            try:
                async with handshakes:
                    if self.first_connect is None:
                        self.first_connect = time.time()
                    ws = await websockets.connect(
                        f"{self.url}/ws/{cs_id}",
                        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                        additional_headers={"Authorization": f"Basic {auth}"},
                        open_timeout=120,
                        ping_interval=None,  # the server pings; the client answers its pings
                        compression=None,
                        max_queue=4,
                    )
                self.connects += 1
                self.connected += 1
                try:
                    await self.session(cs_id, ws)
                finally:
                    self.connected -= 1
            except (ConnectionRefusedError, websockets.InvalidStatus) as exc:
                if isinstance(exc, ConnectionRefusedError):
                    self.refused += 1
                else:
                    self.errors[f"HTTP {exc.response.status_code}"] += 1
            except websockets.ConnectionClosed:
                pass
            except Exception as exc:  # counted, and the station tries again, as a real one would
                self.errors[type(exc).__name__] += 1
            if not self.stopping:
                await asyncio.sleep(random.uniform(*RECONNECT_SECONDS))

    async def session(self, cs_id: str, ws: Any) -> None:
        heartbeat: asyncio.Task[None] | None = None
        boot = {"reason": "PowerUp", "chargingStation": {"vendorName": "Bench", "model": "Lean"}}
        await ws.send(json.dumps([2, "boot", "BootNotification", boot]))
        try:
            async for text in ws:
                frame = json.loads(text)
                if frame[0] == 3 and frame[1] == "boot":
                    self.booted.add(cs_id)
                    self.last_boot = time.time()
                    if heartbeat is None:
                        heartbeat = asyncio.create_task(self.heartbeat(ws, int(frame[2].get("interval", 300))))
                elif frame[0] == 4 and frame[1] == "boot":
                    # A station whose boot is refused with a CallError boots again later, as a real one does.
                    self.errors[f"BootNotification CallError {frame[2]}"] += 1
                    await asyncio.sleep(random.uniform(*RECONNECT_SECONDS))
                    await ws.send(json.dumps([2, "boot", "BootNotification", boot]))
                elif frame[0] == 2 and frame[2] == "SetVariables":
                    now = time.time()
                    results = []
                    for item in frame[3]["setVariableData"]:
                        seen = self.arrivals.setdefault(item["attributeValue"], [now, 0])
                        seen[1] += 1
                        results.append({"attributeStatus": "Accepted", "component": item["component"],
                                        "variable": item["variable"]})
                    await ws.send(json.dumps([3, frame[1], {"setVariableResult": results}]))
                elif frame[0] == 2:
                    await ws.send(json.dumps([4, frame[1], "NotImplemented", "", {}]))
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
            await ws.close()

    async def heartbeat(self, ws: Any, interval: int) -> None:
        await asyncio.sleep(random.uniform(0, interval))  # spread, as stations booted at different times are
        number = 0
        while True:
            number += 1
            await ws.send(json.dumps([2, f"hb{number}", "Heartbeat", {}]))
            self.heartbeats += 1
            await asyncio.sleep(interval)


async def _main(args: argparse.Namespace) -> None:
    raise_open_files_limit()
    ids = [(station_id(n), f"password-{n}") for n in range(args.first, args.first + args.count)]
    fleet = Fleet(args.url, ids)
    handshakes = asyncio.Semaphore(HANDSHAKES_IN_FLIGHT)
    tasks = [asyncio.create_task(fleet.station(cs_id, password, handshakes)) for cs_id, password in ids]
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if line == "report":
            sys.stdout.write(json.dumps(fleet.report()) + "\n")
            sys.stdout.flush()
        elif line in ("stop", ""):
            fleet.stopping = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="ws://host:port of the OCPP endpoint")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
