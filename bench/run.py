"""The benchmark driver (``make bench``): seed each engine, serve it twice (API and baseline), load both, report.

For each engine in BENCH_ENGINES it seeds a store through the repositories, starts the API the way
production does (gunicorn, uvicorn workers) and the bare-ASGI baseline of bench/baseline.py on the
same store, and drives both with wrk, one scenario after the other. See bench/config.py for the
BENCH_* variables. Every process it starts is stopped on the way out, whatever happens.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from bench import list_pages, load, ocpp_fleet, report
from bench.config import DOCS, REPO, Config, ConfigError
from bench.load import LoadResult
from bench.scenarios import Scenario, auth_group, scenarios
from bench.seed import Dataset, IdFiles, SeedTiming, make_certificate_pems, seed, station_id, write_id_files
from bench.servers import Gunicorn, Nx27017
from maeve_api.storage import open_storage

API_APP = "maeve_api.asgi:app"
BASELINE_APP = "bench.baseline:app"
RESULTS = REPO / "bench" / "results"
#: Without a fixed-rate generator, the half-peak run uses this fraction of the connections instead.
FALLBACK_CONNECTION_SHARE = 4


@dataclass
class Measured:
    """One scenario on one engine: the API, the baseline, and the RSS of their workers afterwards."""

    scenario: Scenario
    api: LoadResult
    api_rss: list[float]
    baseline: LoadResult | None = None
    baseline_rss: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline.rps:
            return None
        return self.api.rps / self.baseline.rps


@dataclass
class EngineResults:
    """Everything measured on one engine."""

    engine: str
    seeding: SeedTiming
    measured: list[Measured] = field(default_factory=list)
    growth_full: LoadResult | None = None  # auth lookup on the full store, in rounds alternating with:
    growth_small: LoadResult | None = None  # auth lookup on the small store
    growth_stations: int = 0
    growth_method: str = ""
    half_peak: LoadResult | None = None
    half_peak_baseline: LoadResult | None = None  # the baseline at the same rate: the floor of machine and tool
    half_peak_target: float = 0.0
    half_peak_method: str = ""
    storm: dict[str, LoadResult] = field(default_factory=dict)
    storm_method: str = ""
    rss_after: dict[str, list[float]] = field(default_factory=dict)
    store_rss_mb: float | None = None

    def find(self, key: str) -> Measured | None:
        return next((m for m in self.measured if m.scenario.key == key), None)


class Run:
    """One benchmark run: its configuration, where it writes and what it measured."""

    def __init__(self, config: Config, workdir: Path, results: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.results = results
        self.raw = results / "raw"
        self.raw.mkdir(parents=True, exist_ok=True)
        self.dataset = Dataset(config.stations, config.certificates, config.tokens)
        self.ids: IdFiles = write_id_files(workdir / "ids", self.dataset)
        self.pems = make_certificate_pems()

    def log(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)

    # Stores

    def open_stores(self, engine: str, stack: contextlib.ExitStack) -> tuple[str, str, Nx27017 | None]:
        """URLs of the main and the small (growth) store of ``engine``, and the main store's server if any."""
        directory = self.workdir / engine
        directory.mkdir()
        if engine == "sqlite":
            return f"sqlite:///{directory / 'main.db'}", f"sqlite:///{directory / 'growth.db'}", None
        servers = []
        for name in ("main", "growth"):  # one server each, so that the two stores share nothing
            server = Nx27017(name, directory)
            stack.callback(server.stop)
            server.start()
            servers.append(server)
        return servers[0].database_url("maeve_bench"), servers[1].database_url("maeve_bench"), servers[0]

    def seed(self, url: str, dataset: Dataset) -> SeedTiming:
        storage = open_storage(url)
        try:
            return seed(storage, dataset, self.pems)
        finally:
            storage.close()

    # Load

    def keep(self, name: str, result: LoadResult) -> None:
        (self.raw / f"{name}.txt").write_text(result.output)

    def at_rate(self, server: Gunicorn, engine: str, rate: float) -> LoadResult:
        """Auth lookup at ``rate`` requests/s with hey, or, without it, wrk with fewer connections."""
        config = self.config
        if load.has("hey"):
            url = f"{server.url}/api/v0/cs/{station_id(config.stations // 2)}/auth"
            result = load.hey(url, connections=config.connections, seconds=config.duration, rate=rate)
        else:
            result = load.wrk(
                server.url,
                "lookup.lua",
                (auth_group(self.ids.stations),),
                seconds=config.duration,
                connections=max(1, config.connections // FALLBACK_CONNECTION_SHARE),
                threads=config.threads,
            )
        self.keep(f"{engine}-{server.name}-half-peak", result)
        return result

    def at_rate_method(self) -> str:
        connections = self.config.connections
        if load.has("hey"):
            return f"hey -c {connections} -q (rate / {connections}): fixed rate, one station id"
        return (
            f"approximation: no fixed-rate load generator (hey) installed, so wrk with "
            f"{max(1, connections // FALLBACK_CONNECTION_SHARE)} connections instead of {connections}, "
            "at whatever rate that gives"
        )

    def storm(self, server: Gunicorn, engine: str) -> LoadResult:
        """``storm_requests`` auth lookups at once over ``storm_connections`` connections.

        hey sends exactly that many; without it, wrk holds the connections for BENCH_DURATION and the
        time is extrapolated from its rate.
        """
        config = self.config
        connections = min(config.storm_connections, config.storm_requests)
        if load.has("hey"):
            url = f"{server.url}/api/v0/cs/{station_id(0)}/auth"
            result = load.hey(url, connections=connections, requests=config.storm_requests)
        else:
            measured = load.wrk(
                server.url,
                "lookup.lua",
                (auth_group(self.ids.stations),),
                seconds=config.duration,
                connections=connections,
                threads=config.threads,
            )
            seconds = config.storm_requests / measured.rps if measured.rps else float("nan")
            result = dataclasses.replace(measured, requests=config.storm_requests, seconds=seconds)
        self.keep(f"{engine}-{server.name}-storm", result)
        return result

    def storm_method(self) -> str:
        config = self.config
        connections = min(config.storm_connections, config.storm_requests)
        if load.has("hey"):
            return f"hey -n {config.storm_requests} -c {connections} (one station id)"
        return (
            f"approximation: no hey, so wrk -c {connections} for {config.duration} s, "
            f"time = {config.storm_requests} / its rate, errors as counted in that run"
        )

    # One engine

    def engine(self, engine: str) -> EngineResults:
        """Seed, serve and load one engine; every process started here is stopped before returning."""
        config = self.config
        with contextlib.ExitStack() as stack:
            main_url, growth_url, store_server = self.open_stores(engine, stack)
            self.log(f"{engine}: seeding {self.dataset.records:,} records through the repositories")
            results = EngineResults(engine, self.seed(main_url, self.dataset))
            self.log(f"{engine}: seeded in {results.seeding.total_seconds:.2f} s")
            results.growth_stations = config.growth_stations
            self.seed(growth_url, Dataset(config.growth_stations))

            api = self.serve(stack, "api", API_APP, main_url)
            baseline = self.serve(stack, "baseline", BASELINE_APP, main_url)
            small = self.serve(stack, "api-small", API_APP, growth_url) if "auth" in config.scenarios else None
            for scenario in scenarios(config, self.ids):
                results.measured.append(self.measure_both(engine, scenario, api, baseline))

            auth = results.find("auth")
            if auth is not None and small is not None:
                results.growth_full, results.growth_small = self.growth(engine, auth.scenario, api, small)
                results.growth_method = (
                    f"API, wrk as above, {config.rounds} alternating rounds of {config.duration} s on each store"
                )
                self.log(
                    f"{engine}: auth lookup, {config.growth_stations:,} vs {config.stations:,} stations: "
                    f"{results.growth_small.rps:,.0f}/s vs {results.growth_full.rps:,.0f}/s"
                )
                self.log(f"{engine}: p99 at half of peak, reconnect storm")
                results.half_peak_target = auth.api.rps / 2
                results.half_peak_method = self.at_rate_method()
                results.half_peak = self.at_rate(api, engine, results.half_peak_target)
                results.half_peak_baseline = self.at_rate(baseline, engine, results.half_peak_target)
                results.storm_method = self.storm_method()
                results.storm = {"api": self.storm(api, engine), "baseline": self.storm(baseline, engine)}
            results.rss_after = {"api": api.worker_rss_mb(), "baseline": baseline.worker_rss_mb()}
            if store_server is not None:
                results.store_rss_mb = store_server.rss_mb()
        return results

    def _fresh_store(self, stack: contextlib.ExitStack, scenario: str, engine: str) -> tuple[Path, str]:
        """A directory of the scenario's own and the URL of an empty store of ``engine`` in it (an nx-27017
        server, stopped with ``stack``)."""
        directory = self.workdir / f"{scenario}-{engine}"
        directory.mkdir()
        if engine == "sqlite":
            return directory, f"sqlite:///{directory / f'{scenario}.db'}"
        server = Nx27017(scenario, directory)
        stack.callback(server.stop)
        server.start()
        return directory, server.database_url(f"maeve_bench_{scenario}")

    def ocpp(self, engine: str) -> ocpp_fleet.OcppResults:
        """The OCPP scenarios of bench/ocpp_fleet.py on a fresh store of ``engine``."""
        config = self.config
        with contextlib.ExitStack() as stack:
            directory, url = self._fresh_store(stack, "ocpp", engine)
            return ocpp_fleet.run_engine(
                engine, url, config.ocpp_stations, config.ocpp_fleet_processes, config.workers, directory,
                self.log, idle_seconds=config.ocpp_idle, stagings=config.ocpp_stagings,
            )

    def pages(self, engine: str) -> list_pages.PageResults:
        """The paging scenario of bench/list_pages.py on a fresh store of ``engine``."""
        config = self.config
        with contextlib.ExitStack() as stack:
            _directory, url = self._fresh_store(stack, "pages", engine)
            if engine != "sqlite":
                # nx-27017 counts by reading every document; a longer socket timeout lets it finish at 100,000.
                url = f"{url}?socketTimeoutMS={list_pages.NX_SOCKET_TIMEOUT_MS}"
            return list_pages.run_engine(engine, url, config.page_counts, config.page_rounds, self.log)

    def growth(self, engine: str, auth: Scenario, api: Gunicorn, small: Gunicorn) -> tuple[LoadResult, LoadResult]:
        """Auth lookup on the full store and on the small one, in alternating rounds; the totals of each.

        Alternating short runs cancel out most of the drift that other load on the machine causes.
        """
        path = self.workdir / "ids" / "growth-stations.txt"
        path.write_text("".join(f"{station_id(n)}\n" for n in range(self.config.growth_stations)))
        small_auth = Scenario("auth", "auth lookup", "lookup.lua", (auth_group(path),))
        options = {"connections": self.config.connections, "threads": self.config.threads}
        seconds = self.config.duration
        load.wrk(small.url, small_auth.script, small_auth.args, seconds=max(1, self.config.warmup), **options)
        rounds: dict[str, list[LoadResult]] = {"full": [], "small": []}
        for _round in range(self.config.rounds):
            rounds["full"].append(load.wrk(api.url, auth.script, auth.args, seconds=seconds, **options))
            rounds["small"].append(load.wrk(small.url, small_auth.script, small_auth.args, seconds=seconds, **options))
        for name, runs in rounds.items():
            self.keep(f"{engine}-growth-{name}", load.combine(runs))
        return load.combine(rounds["full"]), load.combine(rounds["small"])

    def serve(self, stack: contextlib.ExitStack, name: str, app: str, url: str) -> Gunicorn:
        server = Gunicorn(name, app, url, self.config.workers, self.workdir)
        stack.callback(server.stop)
        server.start()
        return server

    def measure_both(self, engine: str, scenario: Scenario, api: Gunicorn, baseline: Gunicorn) -> Measured:
        """The scenario with wrk against the API and the baseline in alternating rounds; each one's median round.

        Both are warmed up first. Alternating rounds spread the drift of other load on the machine over
        both, which a single run of each, one after the other, does not.
        """
        config = self.config
        options = {"connections": config.connections, "threads": config.threads}
        servers = (api, baseline)
        if config.warmup:
            for server in servers:
                load.wrk(server.url, scenario.script, scenario.args, seconds=config.warmup, **options)
        rounds: dict[str, list[LoadResult]] = {server.name: [] for server in servers}
        for number in range(1, config.rounds + 1):
            for server in servers:
                result = load.wrk(server.url, scenario.script, scenario.args, seconds=config.duration, **options)
                self.keep(f"{engine}-{server.name}-{scenario.key}-{number}", result)
                rounds[server.name].append(result)
        api_median, baseline_median = load.median(rounds[api.name]), load.median(rounds[baseline.name])
        measured = Measured(scenario, api_median, api.worker_rss_mb(), baseline_median, baseline.worker_rss_mb())
        ratio = f"{measured.ratio:.0%}" if measured.ratio is not None else "-"
        self.log(
            f"{engine}: {scenario.title}: api {api_median.rps:,.0f}/s, baseline {baseline_median.rps:,.0f}/s "
            f"({ratio}), api errors {api_median.errors}"
        )
        return measured


def _raise_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception, so that every ``finally`` runs and the servers are stopped.
    raise SystemExit(128 + signum)


def main() -> int:
    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    missing = [tool for tool in ("wrk", "hey") if not load.has(tool)] if config.http_scenarios else []
    if missing:
        print(
            f"bench: needs the load generators wrk and hey; not found: {', '.join(missing)}."
            f" On Debian or Ubuntu: apt-get install {' '.join(missing)}",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    started = datetime.datetime.now(datetime.UTC)
    results_dir = RESULTS / started.strftime("%Y%m%dT%H%M%SZ")
    environment = report.environment(config, started)
    try:
        with tempfile.TemporaryDirectory(prefix="maeve-bench-") as workdir:
            run = Run(config, Path(workdir), results_dir)
            settings = " ".join(f"{name}={value}" for name, value in config.describe().items())
            run.log(f"results in {results_dir.relative_to(REPO)}; {settings}")
            engines = [run.engine(engine) for engine in config.engines] if config.http_scenarios else []
            fleets = [run.ocpp(engine) for engine in config.engines] if "ocpp" in config.scenarios else []
            pages = [run.pages(engine) for engine in config.engines] if "pages" in config.scenarios else []
    except (KeyboardInterrupt, SystemExit):
        print("bench: interrupted; the servers it started have been stopped", file=sys.stderr)
        raise
    environment["finished"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    environment["load average at the end (1/5/15 min)"] = report.load_average()
    section = report.markdown(config, environment, engines) if engines else report.header(config, environment)
    if fleets:
        section += "\n" + ocpp_fleet.markdown(fleets)
        (results_dir / "ocpp.json").write_text(json.dumps([dataclasses.asdict(f) for f in fleets], indent=2))
    paging = list_pages.markdown(pages, config.page_rounds) if pages else ""
    if pages:
        (results_dir / "pages.json").write_text(json.dumps(list_pages.as_json(pages), indent=2))
    (results_dir / "report.md").write_text(f"{section}\n{paging}" if paging else section)
    (results_dir / "results.json").write_text(report.as_json(config, environment, engines))
    print()
    if engines:
        print(report.text_table(engines))
    for fleet in fleets:
        print(f"{fleet.engine}: {json.dumps(fleet.figures)}")
    if paging:
        print(paging)
    if config.docs:
        docs = REPO / config.docs
        if engines or fleets or not pages:
            history = report.history_entry(config, environment, engines) if config.note else None
            report.update_docs(docs, section, history)
        if pages:
            # A section of its own, so that a run of the paging alone leaves the other results as they are.
            list_pages.update_docs(docs, list_pages.docs_section(report.header(config, environment), paging))
        print(f"\nwrote {docs.relative_to(REPO)} and {results_dir.relative_to(REPO)}/")
    else:
        print(f"\nwrote {results_dir.relative_to(REPO)}/ (BENCH_DOCS=1 also rewrites {DOCS})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
