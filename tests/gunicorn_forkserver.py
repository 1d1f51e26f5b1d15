"""gunicorn started by fork from a process that has imported the service's libraries already, for the tests about
what the service serves (``tests/conftest.py`` ``start_gunicorn_process(..., forked=True)``).

A new interpreter spends most of a start importing connexion, Starlette, uvicorn, pymongo and the rest before gunicorn
reads its configuration (ready in 0.67 s; forked, in 0.36 s), and a run starts about twenty. This is multiprocessing's
forkserver: started by a test process the first time it needs one, with those libraries imported, and forked for
each start. The forked process sets the environment and sends its output to the log as ``subprocess.Popen`` would,
then runs gunicorn's own entry point, which reads its arguments, its configuration and the app as it does from the
command line. Tests of how the service starts (the ``maeve-api`` command, refused starts) start a new interpreter.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Imported by the forkserver before it forks, with what they import (connexion brings Starlette, jsonschema,
#: requests, Jinja and PyYAML; uvicorn_worker brings uvicorn). Not the service's own modules, which read the
#: environment when they are imported, and not prometheus-client, which reads PROMETHEUS_MULTIPROC_DIR then
#: (gunicorn_conf sets it for each start).
PRELOAD = (
    "connexion",
    "marshmallow",
    "gunicorn.app.wsgiapp",
    "uvicorn_worker",
    "websockets",
    "pythonjsonlogger.json",
    "cryptography.x509",
    "ocpp.v16",
    "ocpp.v201",
    "pymongo",
)

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload([__name__, *PRELOAD])


def _gunicorn(argv: Sequence[str], env: Mapping[str, str], log: str) -> None:
    """In the forked process: what a new ``gunicorn`` process with ``env`` and its output in ``log`` would do."""
    os.environ.clear()
    os.environ.update(env)
    output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    sys.argv = ["gunicorn", *argv]
    from gunicorn.app.wsgiapp import run

    run()


class ForkedProcess:
    """The part of ``subprocess.Popen`` the tests use, for a process forked by the forkserver."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.args = ["gunicorn", *argv]
        self._process = _context.Process(target=_gunicorn, args=(list(argv), dict(env), str(log)), daemon=True)
        # daemon: one a test left running is stopped as its test process exits.
        self._process.start()
        self.pid = self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self._process.exitcode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)
