"""gunicorn forked for the tests about serving (tests/gunicorn_forkserver.py) ends and refuses as the command does."""

from __future__ import annotations

import json
import signal

from tests.conftest import answering, start_gunicorn_process, stop_process


def test_a_forked_gunicorn_serves_and_exits_as_a_new_process_would(tmp_path):
    """Its output goes to the log; on SIGTERM it exits 0, its metrics directory removed."""
    log = tmp_path / "gunicorn.log"
    env = {"MAEVE_WORKERS": "1", "MAEVE_LOG_LEVEL": "info", "TMPDIR": str(tmp_path)}
    process, ports = start_gunicorn_process(f"sqlite:///{tmp_path}/maeve.db", log, env, forked=True)
    try:
        assert answering(process, [f"http://127.0.0.1:{ports['api']}/ready"], 30.0), log.read_text()
        assert len(list(tmp_path.glob("maeve-metrics-*"))) == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        stop_process(process)
    assert list(tmp_path.glob("maeve-metrics-*")) == []
    assert json.loads(log.read_text().splitlines()[-1])["message"] == "Shutting down: Master"


def test_a_forked_gunicorn_refuses_a_bad_environment_with_exit_status_2(tmp_path):
    log = tmp_path / "gunicorn.log"
    process, _ports = start_gunicorn_process("sqlite:////nonexistent/dir/x.db", log, {}, forked=True)
    try:
        assert process.wait(timeout=30) == 2
    finally:
        stop_process(process)
    [line] = log.read_text().splitlines()
    assert json.loads(line)["level"] == "ERROR"
