"""The Makefile's help and the benchmark's defaults: results stay under bench/results/ unless asked."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.config import DOCS, Config, ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_make_help_lists_every_target():
    """`make help` names each target the README mentions, with what it does."""
    done = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    targets = {line.split()[1] for line in done.stdout.splitlines() if line.strip().startswith("make ")}
    assert {"help", "run", "check-config", "test", "fuzz", "bench", "lint", "clean"} <= targets


@pytest.mark.parametrize(
    ("environment", "docs"),
    [
        ({}, ""),
        ({"BENCH_DOCS": "1"}, DOCS),
        ({"BENCH_DOCS": "other.md"}, "other.md"),
        ({"BENCH_NOTE": "what changed"}, DOCS),
        ({"BENCH_NOTE": "what changed", "BENCH_DOCS": "0"}, ""),
    ],
)
def test_the_benchmark_rewrites_a_tracked_file_only_when_asked(environment, docs):
    """By default the benchmark writes only under bench/results/; BENCH_DOCS=1 or a BENCH_NOTE ask for the docs."""
    assert Config.from_env(environment).docs == docs


def test_the_makefile_installs_no_system_packages():
    """`make bench` says what it needs instead of installing it."""
    assert "apt-get install" not in (ROOT / "Makefile").read_text()


def test_the_ocpp_scenarios_run_on_their_own_without_the_http_load_generators():
    """BENCH_SCENARIOS=ocpp selects the station fleet alone, so wrk and hey are not needed."""
    config = Config.from_env({"BENCH_SCENARIOS": "ocpp", "BENCH_OCPP_STATIONS": "500"})
    assert config.scenarios == ("ocpp",) and config.http_scenarios == ()
    assert config.ocpp_stations == 500
    assert "ocpp" not in Config.from_env({"BENCH_SCENARIOS": "auth,mixed"}).scenarios
    assert "ocpp" in Config.from_env({}).scenarios


def test_the_paging_scenario_runs_on_its_own_at_the_counts_asked():
    """BENCH_SCENARIOS=pages selects the paging of every list alone (no wrk, no hey), at 1,000, 10,000 and 100,000
    records unless BENCH_PAGE_COUNTS names others; a count below one page is refused naming the variable."""
    config = Config.from_env({"BENCH_SCENARIOS": "pages"})
    assert config.scenarios == ("pages",) and config.http_scenarios == ()
    assert config.page_counts == (1_000, 10_000, 100_000)
    assert Config.from_env({"BENCH_PAGE_COUNTS": "10_000,1000"}).page_counts == (1_000, 10_000)
    assert Config.from_env({"BENCH_PAGE_COUNTS": "1000"}).describe()["BENCH_PAGE_COUNTS"] == "1000"
    with pytest.raises(ConfigError, match="BENCH_PAGE_COUNTS"):
        Config.from_env({"BENCH_PAGE_COUNTS": "10"})
