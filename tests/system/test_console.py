"""The ``maeve-api`` command: check-config, the start-up line, refused starts and a quiet shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port

COMMAND = str(Path(sys.executable).parent / "maeve-api")
ROOT = Path(__file__).resolve().parents[2]


def environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """The test's environment for the command: a store in ``tmp_path``, free ports, temporary files there too."""
    env = {
        **os.environ,
        "MAEVE_DATABASE_URL": f"sqlite:///{tmp_path}/maeve.db",
        "MAEVE_API_PORT": str(free_port()),
        "MAEVE_OCPI_PORT": str(free_port()),
        "MAEVE_OCPP_PORT": str(free_port()),
        "MAEVE_WORKERS": "1",
        "TMPDIR": str(tmp_path),
        **variables,
    }
    for name in ("PROMETHEUS_MULTIPROC_DIR", "MAEVE_OCPI_EXTERNAL_URL"):
        if name not in variables:
            env.pop(name, None)
    return env


def metrics_dirs(tmp_path: Path) -> list[Path]:
    return list(tmp_path.glob("maeve-metrics-*"))


def test_check_config_prints_what_would_be_served(tmp_path):
    """check-config prints the store, each listener and the advertised OCPI URL, which follows MAEVE_OCPI_PORT."""
    env = environment(tmp_path, MAEVE_API_PORT="29410", MAEVE_OCPI_PORT="29411", MAEVE_OCPP_PORT="29310")
    done = subprocess.run([COMMAND, "check-config"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "store": f"sqlite:{tmp_path.resolve()}/maeve.db",
        "listeners": {
            "api": "http://127.0.0.1:29410",
            "ocpi": "http://127.0.0.1:29411",
            "ocpp": "ws://127.0.0.1:29310/ws/{csId}",
        },
        "ocpi_versions_url": "http://localhost:29411/ocpi/versions",
        "workers": 1,
    }
    assert not (tmp_path / "maeve.db").exists()


def test_check_config_names_mongodb_without_credentials(tmp_path):
    """The store of a MongoDB URL is shown without its user, password or options."""
    env = environment(tmp_path, MAEVE_DATABASE_URL="mongodb://admin:s3cret@db1:27017,db2:27017/csms?authSource=x")
    done = subprocess.run([COMMAND, "check-config"], env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(done.stdout)["store"] == "mongodb://db1:27017,db2:27017/csms"
    assert "s3cret" not in done.stdout and "admin" not in done.stdout


@pytest.mark.parametrize("command", ["check-config", "serve"])
@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"MAEVE_DATABASE_URL": "sqlite:///{tmp}/missing/dir/x.db"}, "MAEVE_DATABASE_URL"),
        ({"MAEVE_API_PORT": "29500", "MAEVE_OCPI_PORT": "29500"}, "MAEVE_API_PORT and MAEVE_OCPI_PORT must differ"),
        ({"MAEVE_WORKERS": "many"}, "MAEVE_WORKERS"),
    ],
)
def test_a_bad_environment_is_refused_naming_the_variable(tmp_path, command, variables, named):
    """A bad variable stops the command with one message naming it; nothing is created, not even a directory."""
    env = environment(tmp_path, **{name: value.format(tmp=tmp_path) for name, value in variables.items()})
    done = subprocess.run([COMMAND, command], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], done.stderr
    assert not (tmp_path / "missing").exists()
    assert metrics_dirs(tmp_path) == []


def test_a_port_in_use_is_one_clear_message(tmp_path):
    """A port another process holds stops the start at once with one line naming the variable and the port."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = environment(tmp_path, MAEVE_OCPI_PORT=str(port))
        started = time.monotonic()
        done = subprocess.run([COMMAND, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert time.monotonic() - started < 10
    errors = [json.loads(line) for line in done.stderr.splitlines() if '"ERROR"' in line]
    assert [error["message"] for error in errors] == [
        f"MAEVE_OCPI_PORT: port {port} on 127.0.0.1 is already in use by another process"
    ]
    assert metrics_dirs(tmp_path) == []


def serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``maeve-api serve`` with ``env``, once its API answers /ready; its output goes to ``log``."""
    with open(log, "wb") as output:
        process = subprocess.Popen([COMMAND, "serve"], env=env, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(f"http://127.0.0.1:{env['MAEVE_API_PORT']}/ready", timeout=1).status_code == 200:
                return process
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    process.wait()
    pytest.fail(log.read_text())


def test_serve_logs_one_start_up_line_and_shuts_down_quietly(tmp_path):
    """serve logs, in JSON, the store, each listener and the OCPI URL; SIGTERM ends it without socket errors."""
    env = environment(tmp_path)
    api, ocpi, ocpp = env["MAEVE_API_PORT"], env["MAEVE_OCPI_PORT"], env["MAEVE_OCPP_PORT"]
    log = tmp_path / "serve.log"
    process = serve(env, log)
    try:
        assert metrics_dirs(tmp_path) != []
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log.read_text()
    records = [json.loads(line) for line in text.splitlines()]
    started = [record for record in records if record["message"] == "maeve-api started"]
    assert len(started) == 1
    assert started[0]["store"] == f"sqlite:{tmp_path.resolve()}/maeve.db"
    assert started[0]["listeners"] == {
        "api": f"http://127.0.0.1:{api}",
        "ocpi": f"http://127.0.0.1:{ocpi}",
        "ocpp": f"ws://127.0.0.1:{ocpp}/ws/{{csId}}",
    }
    assert started[0]["ocpi_versions_url"] == f"http://localhost:{ocpi}/ocpi/versions"
    assert "\x1b[" not in text and "\\u001b" not in text
    assert "Error while closing socket" not in text
    assert metrics_dirs(tmp_path) == []


def test_a_schemathesis_run_against_the_live_server_is_green(tmp_path):
    """``schemathesis run`` with the project's schemathesis.toml and every check passes against the served API."""
    env = environment(tmp_path, MAEVE_LOG_LEVEL="error")
    process = serve(env, tmp_path / "serve.log")
    try:
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "--config-file",
                str(ROOT / "schemathesis.toml"),
                "run",
                f"http://127.0.0.1:{env['MAEVE_API_PORT']}/api/v0/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                "5",
                "--seed",
                "1",
                "--no-color",
                "--generation-database",
                "none",
            ],
            cwd=tmp_path,  # where it keeps its cache
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "Unmatched filters" not in done.stdout
