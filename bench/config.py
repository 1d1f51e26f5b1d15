"""The benchmark's knobs, read once from the ``BENCH_*`` environment variables."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENGINES = ("sqlite", "nx27017")
SCENARIOS = ("auth", "certificate", "token", "mixed", "token-page", "token-upsert", "ocpp", "pages")
#: The HTTP scenarios, measured with wrk and hey; "ocpp" is the station fleet of bench/ocpp_fleet.py, "pages"
#: the paging of every list, bench/list_pages.py.
HTTP_SCENARIOS = tuple(s for s in SCENARIOS if s not in ("ocpp", "pages"))


class ConfigError(ValueError):
    """A BENCH_* variable holds a value that cannot be used; the message names it."""


@dataclass(frozen=True)
class Config:
    """Everything a run is configured with; ``describe()`` lists it for the report."""

    engines: tuple[str, ...] = ENGINES
    scenarios: tuple[str, ...] = SCENARIOS
    duration: int = 5  # seconds of each measured run
    warmup: int = 3  # seconds of load before the measured runs, not counted
    rounds: int = 3  # alternating runs of the API and the baseline per scenario; the median is reported
    connections: int = 32
    threads: int = 2
    workers: int = 2
    stations: int = 100_000
    certificates: int = 10_000
    tokens: int = 100_000
    growth_stations: int = 1_000  # the small store that auth lookup is compared against
    storm_requests: int = 10_000
    storm_connections: int = 1_000
    docs: str = ""  # the file whose results section is rewritten; empty: none, results only under bench/results/
    note: str = ""  # when set, a History entry with this title and the headline numbers is appended
    ocpp_stations: int = 10_000  # stations of the OCPP fleet
    ocpp_fleet_processes: int = 2  # processes the fleet is spread over
    ocpp_idle: int = 30  # seconds the held fleet's CPU is measured over
    ocpp_stagings: int = 200  # settings staged one at a time for the latency
    page_counts: tuple[int, ...] = (1_000, 10_000, 100_000)  # records of each kind the paging is timed at
    page_rounds: int = 5  # rounds of each page timing; the median is reported

    @property
    def http_scenarios(self) -> tuple[str, ...]:
        return tuple(s for s in self.scenarios if s in HTTP_SCENARIOS)

    @property
    def token_page_offset(self) -> int:
        """An offset 90 % of the way into the tokens (offset=90000 for 100,000 tokens)."""
        return self.tokens * 9 // 10

    def describe(self) -> dict[str, str]:
        """The settings as BENCH_* variables and their values."""
        described = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, tuple):
                value = ",".join(str(part) for part in value)
            elif field.name in ("duration", "warmup"):
                value = f"{value}s"
            described[f"BENCH_{field.name.upper()}"] = str(value)
        return described

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Read BENCH_* variables; raises ConfigError naming a bad one."""
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            engines=_choices(env, "BENCH_ENGINES", defaults.engines, ENGINES),
            scenarios=_choices(env, "BENCH_SCENARIOS", defaults.scenarios, SCENARIOS),
            duration=_seconds(env, "BENCH_DURATION", defaults.duration, minimum=1),
            warmup=_seconds(env, "BENCH_WARMUP", defaults.warmup, minimum=0),
            rounds=_int(env, "BENCH_ROUNDS", defaults.rounds, minimum=1),
            connections=_int(env, "BENCH_CONNECTIONS", defaults.connections, minimum=1),
            threads=_int(env, "BENCH_THREADS", defaults.threads, minimum=1),
            workers=_int(env, "BENCH_WORKERS", defaults.workers, minimum=1),
            stations=_int(env, "BENCH_STATIONS", defaults.stations, minimum=1),
            certificates=_int(env, "BENCH_CERTIFICATES", defaults.certificates, minimum=1),
            tokens=_int(env, "BENCH_TOKENS", defaults.tokens, minimum=1),
            growth_stations=_int(env, "BENCH_GROWTH_STATIONS", defaults.growth_stations, minimum=1),
            storm_requests=_int(env, "BENCH_STORM_REQUESTS", defaults.storm_requests, minimum=1),
            storm_connections=_int(env, "BENCH_STORM_CONNECTIONS", defaults.storm_connections, minimum=1),
            docs=_docs(env, defaults.docs),
            note=env.get("BENCH_NOTE", defaults.note),
            ocpp_stations=_int(env, "BENCH_OCPP_STATIONS", defaults.ocpp_stations, minimum=1),
            ocpp_fleet_processes=_int(env, "BENCH_OCPP_FLEET_PROCESSES", defaults.ocpp_fleet_processes, minimum=1),
            ocpp_idle=_seconds(env, "BENCH_OCPP_IDLE", defaults.ocpp_idle, minimum=1),
            ocpp_stagings=_int(env, "BENCH_OCPP_STAGINGS", defaults.ocpp_stagings, minimum=1),
            page_counts=_counts(env, "BENCH_PAGE_COUNTS", defaults.page_counts),
            page_rounds=_int(env, "BENCH_PAGE_ROUNDS", defaults.page_rounds, minimum=1),
        )


#: What ``BENCH_DOCS=1`` (or a BENCH_NOTE without BENCH_DOCS) rewrites.
DOCS = "docs/performance.md"


def _docs(env: Mapping[str, str], default: str) -> str:
    """BENCH_DOCS: ``1`` for docs/performance.md, a path for that file, empty or ``0`` for none.

    A BENCH_NOTE is a History entry of docs/performance.md, so it asks for that file unless BENCH_DOCS says
    otherwise.
    """
    raw = env.get("BENCH_DOCS", "").strip()
    if raw.lower() in ("1", "true", "yes"):
        return DOCS
    if raw.lower() in ("0", "false", "no"):
        return ""
    return raw or (DOCS if env.get("BENCH_NOTE") else default)


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").replace("_", "").replace(",", "")
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise ConfigError(f"{name} must be an integer of at least {minimum}, got {env[name]!r}")
    return int(raw)


def _seconds(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    """Whole seconds from ``10``, ``10s`` or ``2m``."""
    raw = env.get(name, "")
    if not raw:
        return default
    match = re.fullmatch(r"(\d+)([sm]?)", raw.strip())
    if match is None or int(match[1]) * (60 if match[2] == "m" else 1) < minimum:
        raise ConfigError(f"{name} must be whole seconds like 10s or minutes like 2m, at least {minimum}s; got {raw!r}")
    return int(match[1]) * (60 if match[2] == "m" else 1)


def _choices(env: Mapping[str, str], name: str, default: tuple[str, ...], known: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name, "")
    if not raw:
        return default
    chosen = tuple(part.strip() for part in raw.split(",") if part.strip())
    unknown = [part for part in chosen if part not in known]
    if unknown or not chosen:
        raise ConfigError(f"{name} must be a comma-separated list of {', '.join(known)}, got {raw!r}")
    return chosen


def _counts(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """Record counts from ``1000,10000,100_000``; each at least the page size of bench/list_pages.py (100)."""
    raw = env.get(name, "").replace("_", "")
    if not raw:
        return default
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not parts or not all(part.isdigit() and int(part) >= 100 for part in parts):
        raise ConfigError(f"{name} must be a comma-separated list of record counts of at least 100, got {env[name]!r}")
    return tuple(sorted({int(part) for part in parts}))
