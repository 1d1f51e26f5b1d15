"""mongoeco as a MongoDB stand-in: its wire proxy, run from a virtual environment of its own on loopback.

mongoeco needs Python 3.13 or later; the project runs on 3.11. ``make test`` runs this module first
(``python -m tests.mongoeco_engine``), which creates ``.venv-mongoeco`` beside the project's ``.venv`` with a
Python 3.13+ found on the machine and installs ``MONGOECO_REQUIREMENT`` into it from the package index; a
``pytest`` run without it does the same in the first test that needs it (once: later runs find it installed;
an xdist worker waits for another that is installing it). Without such a Python the mongoeco tests are skipped,
saying so.

The ``wire`` extra matters: it brings pymongo's ``bson``, without which the proxy can neither decode a request
nor encode the error saying so, and closes every connection at the driver's first ``hello``.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

#: What the stand-in's environment installs; the lower bound is the version the suite was run with.
MONGOECO_REQUIREMENT = "mongoeco[wire]>=4.11.0,<5"
#: A Python 3.13 or later to create the environment with, where it is not on PATH or under pyenv.
PYTHON_VARIABLE = "MAEVE_TEST_MONGOECO_PYTHON"
#: Where the environment is kept; by default ``.venv-mongoeco`` at the project's root.
VENV_VARIABLE = "MAEVE_TEST_MONGOECO_VENV"

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROXY_SCRIPT = Path(__file__).resolve().with_name("mongoeco_proxy.py")
START_TIMEOUT = 30.0
INSTALL_TIMEOUT = 600.0


class Unavailable(Exception):
    """No Python 3.13 or later is on this machine, so mongoeco cannot run here."""


def _version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    major, minor = out.split()
    return int(major), int(minor)


def find_python() -> str:
    """A Python 3.13 or later: ``MAEVE_TEST_MONGOECO_PYTHON`` if set (and then only it), else ``python3.13``… on
    PATH, else pyenv's."""
    explicit = os.environ.get(PYTHON_VARIABLE)
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    if explicit:
        candidates = [explicit]
    else:
        candidates = [found for name in ("python3.13", "python3.14", "python3.15") if (found := shutil.which(name))]
        candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.1[3-9]*/bin/python3"))
    for candidate in candidates:
        version = _version(candidate)
        if version is not None and version >= (3, 13):
            return candidate
    if explicit:
        raise Unavailable(f"{PYTHON_VARIABLE}={explicit} is not a working Python 3.13 or later")
    raise Unavailable(
        f"mongoeco needs Python 3.13 or later: none on PATH or under {pyenv_root}/versions "
        f"(set {PYTHON_VARIABLE} to one)"
    )


def venv_directory() -> Path:
    return Path(os.environ.get(VENV_VARIABLE, PROJECT_ROOT / ".venv-mongoeco"))


def ensure_venv() -> Path:
    """The environment's Python, creating the environment and installing mongoeco first if needed."""
    venv = venv_directory()
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists() and marker.read_text() == MONGOECO_REQUIREMENT and python.exists():
        return python
    base = find_python()
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.with_name(f"{venv.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another xdist worker may be installing it right now
        if marker.exists() and marker.read_text() == MONGOECO_REQUIREMENT and python.exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)
        steps = [
            [base, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", MONGOECO_REQUIREMENT],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(step)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        marker.write_text(MONGOECO_REQUIREMENT)
    return python


def start_proxy(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start mongoeco's wire proxy (in-memory engine) on a loopback port; returns it and its URI once it
    answers. It stops when ``stop_proxy`` closes its standard input, or by itself when this process dies."""
    python = ensure_venv()
    with open(log, "wb") as errors:
        process = subprocess.Popen(
            [str(python), str(PROXY_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    line = b""
    while not line.endswith(b"\n") and (remaining := deadline - time.monotonic()) > 0:
        if select.select([process.stdout], [], [], remaining)[0]:
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:  # exited before saying where it listens
                break
            line += chunk
    if not line.endswith(b"\n"):
        stop_proxy(process)
        raise RuntimeError(f"mongoeco's proxy did not start within {START_TIMEOUT} s:\n{log.read_text()[-3000:]}")
    return process, str(json.loads(line)["uri"])


def stop_proxy(process: subprocess.Popen[bytes]) -> None:
    """Stop a proxy started by ``start_proxy``: standard input closed, then killed if it has not exited in 5 s."""
    if process.stdin is not None:
        process.stdin.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


if __name__ == "__main__":  # prepare the environment ahead of a run: python -m tests.mongoeco_engine
    try:
        print(ensure_venv())
    except Unavailable as error:
        sys.exit(str(error))
