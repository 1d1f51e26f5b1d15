"""The benchmarked scenarios: which wrk script and which URLs each one sends."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.config import Config
from bench.seed import IdFiles

BASE = "/api/v0"


@dataclass(frozen=True)
class Scenario:
    """One kind of load: a wrk script from bench/wrk/ and its arguments."""

    key: str
    title: str
    script: str
    args: tuple[str, ...]


def _group(weight: int, template: str, ids: object = "") -> str:
    """A lookup.lua group: WEIGHT|TEMPLATE|IDS_FILE."""
    return f"{weight}|{BASE}{template}|{ids}"


def scenarios(config: Config, ids: IdFiles) -> list[Scenario]:
    """The scenarios selected by BENCH_SCENARIOS, in the order they run (the upsert last: it writes)."""
    offset = config.token_page_offset
    every = {
        "auth": Scenario("auth", "auth lookup", "lookup.lua", (auth_group(ids.stations),)),
        "certificate": Scenario(
            "certificate", "certificate lookup", "lookup.lua", (_group(100, "/certificate/{id}", ids.certificates),)
        ),
        "token": Scenario("token", "token lookup", "lookup.lua", (_group(100, "/token/{id}", ids.tokens),)),
        "mixed": Scenario(
            "mixed",
            "mixed 90/5/5 auth/cert/token",
            "lookup.lua",
            (
                _group(90, "/cs/{id}/auth", ids.stations),
                _group(5, "/certificate/{id}", ids.certificates),
                _group(5, "/token/{id}", ids.tokens),
            ),
        ),
        "token-page": Scenario(
            "token-page",
            f"token page offset={offset} limit=100",
            "lookup.lua",
            (_group(100, f"/token?offset={offset}&limit=100"),),
        ),
        "token-upsert": Scenario("token-upsert", "token upsert (POST)", "upsert.lua", (str(ids.tokens),)),
    }
    return [every[key] for key in every if key in config.scenarios]


def auth_group(stations: Path) -> str:
    """The lookup.lua group of auth lookup over the station ids in ``stations``."""
    return _group(100, "/cs/{id}/auth", stations)
