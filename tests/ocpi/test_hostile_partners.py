"""Partners are untrusted: what they make us call, how they answer and how long they take cannot reach, reveal or
stall anything of ours."""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from maeve_api.ocpi.app import create_ocpi_app
from maeve_api.settings import Settings
from maeve_api.web.app import create_app
from maeve_api.web.listeners import PortDispatch
from tests.api.conftest import assert_empty, assert_status
from tests.ocpi.conftest import FAST, Served, listening_socket
from tests.ocpi.hostile import Reply, ocpi_answer, trickle, zeros

SECRET = "internal-secret-4711"
ROLES = [{"role": "EMSP", "party_id": "EMS", "country_code": "NL", "business_details": {"name": "eMSP"}}]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {base64.b64encode(token.encode()).decode()}"}


def _post_credentials(ocpi_url: str, token_a: str, versions_url: str) -> requests.Response:
    body = {"token": "token-b-of-the-partner", "url": versions_url, "roles": ROLES}
    return requests.post(f"{ocpi_url}/ocpi/2.2.1/credentials", json=body, headers=_auth(token_a), timeout=15)


def test_a_partner_cannot_make_us_call_a_loopback_service(make_instance, make_hostile_server):
    """With private networks not allowed, a token A's versions URL on loopback is a 502/3001 naming the step; the
    service is never called and nothing of it is reflected."""
    service = make_hostile_server(lambda _request: Reply(200, body=f'{{"secret": "{SECRET}"}}'.encode()))
    cpo = make_instance(ocpi_allow_private_networks=False)
    assert_empty(cpo.api.post("/register", json={"token": "token-a"}), 201)
    for url in (f"{service.url}/api/v0/token/T1", f"http://localhost:{service.port}/", "http://[::1]:9/"):
        response = _post_credentials(cpo.ocpi_url, "token-a", url)
        assert (response.status_code, response.json()["status_code"]) == (502, 3001), response.text
        assert "GET versions" in response.json()["status_message"]
        assert SECRET not in response.text and "HTTP 200" not in response.text
    assert service.received == []
    assert cpo.store.parties.all() == []


def test_the_operator_is_refused_a_private_url_by_default(make_instance, make_hostile_server):
    """registerParty with a loopback url is a 400 naming url and the rule, and the URL is never called."""
    service = make_hostile_server(lambda _request: Reply(200, body=ocpi_answer([])))
    cpo = make_instance(ocpi_allow_private_networks=False)
    response = cpo.api.post("/register", json={"token": "token-a", "url": f"{service.url}/ocpi/versions"})
    assert_status(response, 400, "url", "MAEVE_OCPI_ALLOW_PRIVATE_NETWORKS")
    assert service.received == []


def test_redirects_are_not_followed_nor_reflected(make_instance, make_hostile_server):
    """A 302 to another server is a failure naming the step and the status; the other server is never called and
    the redirect's body and target are not repeated, to the operator or to a partner."""
    target = make_hostile_server(lambda _request: Reply(200, body=ocpi_answer([])))
    redirect = make_hostile_server(
        lambda _request: Reply(
            302, {"Location": f"{target.url}/ocpi/versions", "Content-Type": "text/plain"}, f"see {SECRET}".encode()
        )
    )
    cpo = make_instance()
    response = cpo.api.post("/register", json={"token": "token-a", "url": f"{redirect.url}/ocpi/versions"})
    assert_status(response, 502, "GET versions", "HTTP 302")
    assert SECRET not in response.text and str(target.port) not in response.text
    assert_empty(cpo.api.post("/register", json={"token": "token-a2"}), 201)
    answer = _post_credentials(cpo.ocpi_url, "token-a2", f"{redirect.url}/ocpi/versions")
    assert (answer.status_code, answer.json()["status_code"]) == (502, 3001)
    assert "HTTP 302" in answer.json()["status_message"]
    assert SECRET not in answer.text and str(target.port) not in answer.text
    assert target.received == []
    assert len(redirect.received) == 2


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (404, f"<html>{SECRET}</html>".encode(), "HTTP 404"),
        (200, f"not json {SECRET}".encode(), "not an OCPI envelope"),
        (200, ocpi_answer(None, 2001, SECRET), "OCPI status_code 2001"),
        (500, ocpi_answer(None, 3000, SECRET), "HTTP 500, OCPI status_code 3000"),
    ],
)
def test_a_partners_answer_is_described_never_repeated(make_instance, make_hostile_server, caplog, status, body, kind):
    """The 502 names the step and the kind of failure only; the partner's text goes to the log, shortened."""
    partner = make_hostile_server(lambda _request: Reply(status, body=body))
    cpo = make_instance()
    response = cpo.api.post("/register", json={"token": "token-a", "url": f"{partner.url}/ocpi/versions"})
    assert_status(response, 502, "GET versions", kind)
    assert SECRET not in response.text
    assert SECRET in caplog.text


def _serve_both(settings: Settings) -> tuple[Served, str, str]:
    """Both listeners in one uvicorn process, as gunicorn runs them: one event loop, one thread pool."""
    api_socket, ocpi_socket = listening_socket(), listening_socket()
    api_port, ocpi_port = api_socket.getsockname()[1], ocpi_socket.getsockname()[1]
    settings = replace(
        settings, api_port=api_port, ocpi_port=ocpi_port, ocpi_external_url=f"http://127.0.0.1:{ocpi_port}"
    )
    app = PortDispatch({api_port: create_app(settings), ocpi_port: create_ocpi_app(settings)})
    return Served(app, api_socket, ocpi_socket), f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{ocpi_port}"


def _station_latencies(api: str, count: int) -> list[float]:
    password = base64.b64encode(b"\x01" * 32).decode()
    latencies = []
    for index in range(count):
        started = time.monotonic()
        response = requests.post(
            f"{api}/api/v0/cs/cs{index}", json={"securityProfile": 1, "base64SHA256Password": password}, timeout=30
        )
        latencies.append(time.monotonic() - started)
        assert response.status_code == 201, response.text
    return latencies


def test_trickling_partners_cannot_stall_the_internal_api(tmp_path: Path, make_hostile_server):
    """Fifty credentials POSTs pointing at a partner that trickles its answer for 20 s: each ends by the call's
    deadline or at once, and meanwhile the internal API answers as usual and /ready stays 200."""
    trickler = make_hostile_server(lambda _request: Reply(200, pieces=trickle(100), pause=0.2, length=100))
    settings = replace(
        Settings(database_url=f"sqlite:///{tmp_path}/maeve.db"),
        **{**FAST, "ocpi_read_timeout": 1.0, "ocpi_call_deadline_seconds": 2.0},
    )
    served, api, ocpi = _serve_both(settings)
    outcomes: list[tuple[int, float, str]] = []
    try:
        assert requests.post(f"{api}/api/v0/register", json={"token": "token-a"}, timeout=5).status_code == 201

        def hostile() -> None:
            started = time.monotonic()
            response = _post_credentials(ocpi, "token-a", f"{trickler.url}/ocpi/versions")
            outcomes.append((response.status_code, time.monotonic() - started, response.text))

        attackers = [threading.Thread(target=hostile) for _ in range(50)]
        for attacker in attackers:
            attacker.start()
        time.sleep(0.5)
        latencies = _station_latencies(api, 5)
        ready = requests.get(f"{api}/ready", timeout=30)
        for attacker in attackers:
            attacker.join(30)
    finally:
        served.stop()
    assert max(latencies) < 1.5, latencies
    assert ready.status_code == 200
    assert len(outcomes) == 50
    assert {status for status, _seconds, _text in outcomes} == {502}
    assert max(seconds for _status, seconds, _text in outcomes) < 6.0
    assert any("timeout" in text for _status, _seconds, text in outcomes)


def test_a_huge_answer_is_not_read_whole(make_instance, make_hostile_server):
    """A 64 MB answer fails the call once 1 MiB has been read; the partner could send only a little of it."""
    size = 64 * 1024 * 1024
    huge = make_hostile_server(lambda _request: Reply(200, pieces=zeros(size), length=size))
    cpo = make_instance()
    response = cpo.api.post("/register", json={"token": "token-a", "url": f"{huge.url}/ocpi/versions"})
    assert_status(response, 502, "GET versions", "larger than")
    time.sleep(0.2)
    assert huge.sent_bytes < 16 * 1024 * 1024, huge.sent_bytes


def test_the_versions_a_partner_offers_are_not_repeated(make_instance, make_hostile_server):
    """A partner offering no version we speak gets a 502 saying so, without the version names it sent."""
    partner = make_hostile_server(
        lambda _request: Reply(200, body=ocpi_answer([{"version": SECRET, "url": "https://x.example/"}]))
    )
    cpo = make_instance()
    response = cpo.api.post("/register", json={"token": "token-a", "url": f"{partner.url}/ocpi/versions"})
    assert_status(response, 502, "GET versions", "no version in common")
    assert SECRET not in response.text
