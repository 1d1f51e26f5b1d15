"""The OCPP scenarios of ``make bench`` (``BENCH_SCENARIOS=ocpp``): a fleet of lean stations against the
endpoint served as ``make run`` serves it (gunicorn, ``BENCH_WORKERS`` workers), one engine at a time.

In order, on one server and one fleet (``BENCH_OCPP_STATIONS`` stations in ``BENCH_OCPP_FLEET_PROCESSES``
processes of ``bench.fleet``):

1. boot storm: every station connects at once, authenticates with basic auth and boots;
2. held: the fleet stays connected and heartbeats; the server's RSS, and its CPU over ``BENCH_OCPP_IDLE``;
3. latency: ``BENCH_OCPP_STAGINGS`` settings staged one at a time through the API (each on a new connection,
   so on either worker) to random stations, from the API's 200 to the SetVariables at the station;
4. fleet reconfigure: one setting staged for every station through the API, until every station has it and
   the API lists no station with anything pending;
5. restart: the server is stopped, a setting is staged for every station in the store, the server is
   started again; until every station has it (nothing lost) and none received a value twice.

Times across processes are wall-clock (``time.time()``) on one machine.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.fleet import raise_open_files_limit
from bench.seed import SQLITE_BATCH, _batch, password_hash, station_id
from bench.servers import Gunicorn
from maeve_api.domain.charge_stations import staged_settings
from maeve_api.storage import open_storage

SETTING = "Bench/Value"
IDLE_SECONDS = 30
STAGINGS = 200
STAGING_RATE = 10.0
#: API clients staging the fleet reconfigure at once.
STAGING_THREADS = 16
DEADLINE = 180.0


def cpu_seconds(pid: int) -> float:
    """user+system CPU seconds of one process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


class FleetProcesses:
    """The fleet processes and their command pipes."""

    def __init__(self, url: str, stations: int, processes: int) -> None:
        share = -(-stations // processes)
        self.processes = []
        for first in range(0, stations, share):
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "bench.fleet", "--url", url, "--first", str(first),
                 "--count", str(min(share, stations - first))],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        self.lock = threading.Lock()

    def report(self) -> dict[str, Any]:
        """The processes' reports summed up (arrivals merged; times the earliest or latest)."""
        with self.lock:
            reports = []
            for process in self.processes:
                assert process.stdin is not None and process.stdout is not None
                process.stdin.write("report\n")
                process.stdin.flush()
            for process in self.processes:
                assert process.stdout is not None
                reports.append(json.loads(process.stdout.readline()))
        total: dict[str, Any] = {"arrivals": {}, "errors": {}}
        for key in ("connected", "connects", "booted", "refused", "heartbeats", "cpu_seconds"):
            total[key] = sum(r[key] for r in reports)
        firsts = [r["first_connect"] for r in reports if r["first_connect"]]
        lasts = [r["last_boot"] for r in reports if r["last_boot"]]
        total["first_connect"] = min(firsts) if firsts else None
        total["last_boot"] = max(lasts) if lasts else None
        total["max_rss_kb"] = [r["max_rss_kb"] for r in reports]
        for r in reports:
            total["arrivals"].update(r["arrivals"])
            for name, count in r["errors"].items():
                total["errors"][name] = total["errors"].get(name, 0) + count
        return total

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    assert process.stdin is not None
                    process.stdin.write("stop\n")
                    process.stdin.flush()
                except (BrokenPipeError, OSError):
                    pass
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


class OcppGunicorn(Gunicorn):
    """The API with its OCPP endpoint, at the default log level."""

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ocpp_port}"

    def pids(self) -> list[int]:
        assert self.process is not None
        return [self.process.pid, *self.worker_pids()]


@dataclass
class OcppResults:
    engine: str
    stations: int
    figures: dict[str, Any] = field(default_factory=dict)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def _wait(predicate: Any, deadline: float, step: float = 0.5) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return False


def _pending_stations(api: str) -> int:
    """Stations the API lists with anything pending, page by page (what an operator would read)."""
    pending, offset = 0, 0
    with requests.Session() as session:
        while True:
            page = session.get(f"{api}/api/v0/cs", params={"offset": offset, "limit": 100}, timeout=30).json()
            pending += sum(1 for item in page if item.get("pending"))
            if len(page) < 100:
                return pending
            offset += 100


def seed_stations(url: str, stations: int) -> None:
    storage = open_storage(url)
    try:
        auth = storage.charge_stations.put_auth
        for start in range(0, stations, SQLITE_BATCH):
            with _batch(storage):
                for n in range(start, min(start + SQLITE_BATCH, stations)):
                    auth(station_id(n), {"security_profile": 0, "password_hash": password_hash(n),
                                         "invalid_username_allowed": False})
    finally:
        storage.close()


def stage_in_store(url: str, stations: int, value: str) -> None:
    storage = open_storage(url)
    try:
        for n in range(stations):  # as the API stages it, one write each
            storage.charge_stations.merge_settings(station_id(n), staged_settings({SETTING: f"{value}-{n}"}))
    finally:
        storage.close()


def run_engine(engine: str, url: str, stations: int, processes: int, workers: int, workdir: Path,
               log: Any, idle_seconds: int = IDLE_SECONDS, stagings: int = STAGINGS) -> OcppResults:
    """Every OCPP scenario on one store; every process started here is stopped before returning."""
    raise_open_files_limit()
    results = OcppResults(engine, stations)
    figures = results.figures
    log(f"{engine}: seeding {stations:,} stations")
    seed_stations(url, stations)
    server = OcppGunicorn("ocpp", "maeve_api.asgi:app", url, workers, workdir)
    server.start()
    fleet: FleetProcesses | None = None
    try:
        baseline_rss = sum(rss_kb(pid) for pid in server.pids())
        figures["server RSS before the fleet (KB)"] = baseline_rss
        # 1. boot storm
        log(f"{engine}: boot storm of {stations:,} stations in {processes} fleet processes")
        figures["load average before"] = load_average()
        cpu_before = sum(cpu_seconds(pid) for pid in server.pids())
        wall = time.time()
        fleet = FleetProcesses(server.ws_url, stations, processes)
        all_booted = _wait(lambda: fleet.report()["booted"] >= stations, DEADLINE, 1.0)
        report = fleet.report()
        figures["boot storm"] = {
            "all booted": all_booted,
            "booted": report["booted"],
            "seconds": (report["last_boot"] or wall) - (report["first_connect"] or wall),
            "errors": report["errors"],
            "connects": report["connects"],
            "server CPU seconds": sum(cpu_seconds(pid) for pid in server.pids()) - cpu_before,
            "fleet CPU seconds": report["cpu_seconds"],
            "load average": load_average(),
        }
        log(f"{engine}: boot storm: {figures['boot storm']}")
        # 2. held and heartbeating
        time.sleep(5)
        pids = server.pids()
        cpu_before, fleet_before = sum(cpu_seconds(pid) for pid in pids), fleet.report()
        time.sleep(idle_seconds)
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        after = fleet.report()
        rss = sum(rss_kb(pid) for pid in server.pids())
        figures["held"] = {
            "connected": after["connected"],
            "server RSS MB": rss / 1024,
            "per station KB": (rss - baseline_rss) / stations,
            "server CPU %": 100 * cpu / idle_seconds,
            "fleet CPU %": 100 * (after["cpu_seconds"] - fleet_before["cpu_seconds"]) / idle_seconds,
            "heartbeats": after["heartbeats"] - fleet_before["heartbeats"],
            "seconds": idle_seconds,
            "worker RSS MB": [round(rss_kb(pid) / 1024) for pid in server.worker_pids()],
            "fleet RSS MB": [round(kb / 1024) for kb in after["max_rss_kb"]],
            "load average": load_average(),
        }
        log(f"{engine}: held: {figures['held']}")
        # 3. latency
        answered: dict[str, float] = {}

        def stage(n: int) -> None:
            value = f"lat-{n}"
            response = requests.post(
                f"{server.url}/api/v0/cs/{station_id(random.randrange(stations))}/reconfigure",
                json={SETTING: value}, headers={"Connection": "close"}, timeout=10)
            answered[value] = time.time()
            response.raise_for_status()

        with ThreadPoolExecutor(8) as pool:
            futures = []
            for n in range(stagings):
                futures.append(pool.submit(stage, n))
                time.sleep(1 / STAGING_RATE)
            for future in futures:
                future.result()
        _wait(lambda: sum(1 for v in answered if v in fleet.report()["arrivals"]) >= stagings, 30)
        arrivals = fleet.report()["arrivals"]
        latencies = [max(0.0, arrivals[v][0] - t) * 1000 for v, t in answered.items() if v in arrivals]
        figures["latency"] = {
            "stagings": stagings, "arrived": len(latencies), "rate": STAGING_RATE,
            "p50 ms": statistics.median(latencies) if latencies else None,
            "p99 ms": _percentile(latencies, 0.99) if latencies else None,
            "max ms": max(latencies) if latencies else None,
            "load average": load_average(),
        }
        log(f"{engine}: latency: {figures['latency']}")
        # 4. fleet reconfigure
        log(f"{engine}: fleet reconfigure")
        cpu_before = sum(cpu_seconds(pid) for pid in server.pids())
        started = time.time()

        def stage_fleet(numbers: range) -> None:
            with requests.Session() as session:
                for n in numbers:
                    session.post(f"{server.url}/api/v0/cs/{station_id(n)}/reconfigure",
                                 json={SETTING: f"fleet-{n}"}, timeout=30).raise_for_status()

        share = -(-stations // STAGING_THREADS)
        with ThreadPoolExecutor(STAGING_THREADS) as pool:
            list(pool.map(stage_fleet, [range(i, min(i + share, stations)) for i in range(0, stations, share)]))
        staged = time.time()
        wanted = {f"fleet-{n}" for n in range(stations)}

        def received() -> int:
            return len(wanted & fleet.report()["arrivals"].keys())

        _wait(lambda: received() >= stations, DEADLINE, 1.0)
        arrived = fleet.report()["arrivals"]
        last = max((arrived[v][0] for v in wanted if v in arrived), default=staged)
        _wait(lambda: _pending_stations(server.url) == 0, DEADLINE, 1.0)
        outcomes = time.time()
        figures["fleet reconfigure"] = {
            "staged in s": staged - started,
            "received": len(wanted & arrived.keys()),
            "all received after s": last - started,
            "every outcome stored after s": outcomes - started,
            "server CPU seconds": sum(cpu_seconds(pid) for pid in server.pids()) - cpu_before,
            "load average": load_average(),
        }
        log(f"{engine}: fleet reconfigure: {figures['fleet reconfigure']}")
        # 5. restart with staged items
        log(f"{engine}: restart")
        server.stop()
        _wait(lambda: fleet.report()["connected"] == 0, 60)
        stage_in_store(url, stations, "restart")
        restarted = time.time()
        server.start(same_ports=True)
        wanted = {f"restart-{n}" for n in range(stations)}
        _wait(lambda: len(wanted & fleet.report()["arrivals"].keys()) >= stations, DEADLINE, 1.0)
        report = fleet.report()
        arrived = report["arrivals"]
        got = wanted & arrived.keys()
        twice = sum(1 for v, (_t, count) in arrived.items() if count > 1)
        figures["restart"] = {
            "delivered": len(got),
            "lost": stations - len(got),
            "delivered twice (any value)": twice,
            "all delivered after s": max((arrived[v][0] for v in got), default=restarted) - restarted,
            "reconnected": report["connected"],
            "errors": report["errors"],
            "load average": load_average(),
        }
        log(f"{engine}: restart: {figures['restart']}")
    finally:
        if fleet is not None:
            fleet.stop()
        server.stop()
    return results


def markdown(results: list[OcppResults]) -> str:
    """The OCPP section of a report."""
    lines = ["### OCPP fleet", "", "| engine | scenario | measured |", "|---|---|---|"]
    for result in results:
        for name, value in result.figures.items():
            lines.append(f"| {result.engine} | {name} | `{json.dumps(value)}` |")
    return "\n".join(lines) + "\n"
