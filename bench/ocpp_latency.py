"""Staged-to-station latency of the OCPP endpoint: the time from the API's answer to a reconfigure until the
station receives the SetVariables, under gunicorn with two workers.

    .venv/bin/python -m bench.ocpp_latency [--stations 200] [--stagings 400] [--rate 20] [--database-url URL]
                                            [--separate]

With ``--separate`` the stations connect to a second gunicorn (two more workers) on the same store, as if the
endpoint ran as a process of its own, while the stagings go to the first one.

Stations are lean OCPP-J clients over ``websockets`` (a ChargePoint object each would cost the loopback
client more CPU than the server under test). Every staging goes to the API on a new connection, so it lands
on either worker, whichever worker holds the station's connection.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import websockets

from bench.servers import free_port

PASSWORD = "bench-password-0001"


def _start(database_url: str, directory: Path, name: str = "gunicorn") -> tuple[subprocess.Popen[bytes], str, str]:
    api, ocpp = free_port(), free_port()
    env = {**os.environ, "MAEVE_DATABASE_URL": database_url, "MAEVE_API_PORT": str(api),
           "MAEVE_OCPI_PORT": str(free_port()), "MAEVE_OCPP_PORT": str(ocpp), "MAEVE_WORKERS": "2",
           "MAEVE_LOG_LEVEL": "warning"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = open(directory / f"{name}.log", "wb")
    process = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", "python:maeve_api.gunicorn_conf",
                                "maeve_api.asgi:app"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{api}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/ready", timeout=1).status_code == 200:
                return process, base, f"ws://127.0.0.1:{ocpp}"
        except requests.RequestException:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("gunicorn did not start")


async def _station(ws_url: str, cs_id: str, arrivals: dict[str, float], ready: asyncio.Event) -> None:
    auth = base64.b64encode(f"{cs_id}:{PASSWORD}".encode()).decode()
    async with websockets.connect(f"{ws_url}/ws/{cs_id}", subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                                  additional_headers={"Authorization": f"Basic {auth}"}) as ws:
        boot = {"reason": "PowerUp", "chargingStation": {"vendorName": "Bench", "model": "Lean"}}
        await ws.send(json.dumps([2, "boot", "BootNotification", boot]))
        async for text in ws:
            frame = json.loads(text)
            if frame[0] == 3 and frame[1] == "boot":
                ready.set()
            elif frame[0] == 2 and frame[2] == "SetVariables":
                results = []
                for item in frame[3]["setVariableData"]:
                    arrivals.setdefault(item["attributeValue"], time.perf_counter())
                    results.append({"attributeStatus": "Accepted", "component": item["component"],
                                    "variable": item["variable"]})
                await ws.send(json.dumps([3, frame[1], {"setVariableResult": results}]))
            elif frame[0] == 2:
                await ws.send(json.dumps([4, frame[1], "NotImplemented", "", {}]))


async def _run(args: argparse.Namespace, api: str, ws_url: str) -> list[float]:
    digest = base64.b64encode(hashlib.sha256(PASSWORD.encode()).digest()).decode()
    ids = [f"bench{n:05d}" for n in range(args.stations)]
    for cs_id in ids:
        requests.post(f"{api}/api/v0/cs/{cs_id}", json={"securityProfile": 0, "base64SHA256Password": digest},
                      timeout=5).raise_for_status()
    arrivals: dict[str, float] = {}
    readies = [asyncio.Event() for _ in ids]
    tasks = [asyncio.create_task(_station(ws_url, cs_id, arrivals, ready)) for cs_id, ready in zip(ids, readies,
                                                                                                  strict=True)]
    await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), 60)
    await asyncio.sleep(1)
    answered: dict[str, float] = {}

    def stage(n: int) -> None:
        value = f"v{n}"
        response = requests.post(f"{api}/api/v0/cs/{ids[n % len(ids)]}/reconfigure", json={"Bench/Value": value},
                                 headers={"Connection": "close"}, timeout=5)
        answered[value] = time.perf_counter()
        response.raise_for_status()

    pending: list[Any] = []
    for n in range(args.stagings):
        pending.append(asyncio.create_task(asyncio.to_thread(stage, n)))
        await asyncio.sleep(1 / args.rate)
    await asyncio.gather(*pending)
    deadline = time.monotonic() + 10
    while len(arrivals) < args.stagings and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    missing = args.stagings - len(arrivals)
    if missing:
        print(f"{missing} stagings never arrived")
    return sorted(max(0.0, arrivals[v] - answered[v]) for v in answered if v in arrivals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--stagings", type=int, default=400)
    parser.add_argument("--rate", type=float, default=20.0, help="stagings per second")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--separate", action="store_true", help="stations on a gunicorn of their own")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="maeve-ocpp-bench-") as directory:
        url = args.database_url or f"sqlite:///{directory}/bench.db"
        processes = []
        try:
            process, api, ws_url = _start(url, Path(directory))
            processes.append(process)
            if args.separate:
                process, _, ws_url = _start(url, Path(directory), "gunicorn-ocpp")
                processes.append(process)
            latencies = asyncio.run(_run(args, api, ws_url))
        finally:
            for process in processes:
                process.terminate()
                process.wait(30)
    ms = [value * 1000 for value in latencies]
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    where = "a gunicorn of their own" if args.separate else "the API's gunicorn"
    print(f"{len(ms)} stagings to {args.stations} stations on {where} at {args.rate:g}/s: staged-to-station latency "
          f"p50 {statistics.median(ms):.0f} ms, p99 {p99:.0f} ms, max {ms[-1]:.0f} ms")


if __name__ == "__main__":
    main()
