"""The deployment files keep what production relies on: a non-root gunicorn image and a MongoDB replica set."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_image_runs_gunicorn_as_a_non_root_user():
    """The image switches to a non-root user before it runs gunicorn with the project's configuration."""
    instructions = dockerfile_instructions()
    users = [argument for name, argument in instructions if name == "USER"]
    assert users and users[-1] not in ("root", "0")
    command = json.loads(next(argument for name, argument in instructions if name == "CMD"))
    assert command[:3] == ["gunicorn", "-c", "python:maeve_api.gunicorn_conf"]
    assert [name for name, _ in instructions].index("USER") < [name for name, _ in instructions].index("CMD")


def test_the_image_health_check_asks_for_readiness():
    """The image's health check calls /ready, which fails while the store does not answer."""
    check = next(argument for name, argument in dockerfile_instructions() if name == "HEALTHCHECK")
    assert "/ready" in " ".join(shlex.split(check.replace("[", " ").replace("]", " ").replace(",", " ")))


def test_compose_runs_mongodb_as_a_replica_set_with_majority_writes():
    """compose starts MongoDB as a replica set and the API writes with majority concern and retryable writes."""
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert "--replSet" in services["mongo"]["command"]
    url = urlsplit(services["maeve-api"]["environment"]["MAEVE_DATABASE_URL"])
    options = parse_qs(url.query)
    assert url.scheme == "mongodb"
    assert options["replicaSet"] == ["rs0"] and options["w"] == ["majority"] and options["retryWrites"] == ["true"]
    assert services["maeve-api"]["depends_on"]["mongo"]["condition"] == "service_healthy"
