"""The API under gunicorn with several workers: concurrent writers, metrics and graceful shutdown."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.system.conftest import WORKERS

WRITERS = 16


def token(uid: str, writer: int) -> dict[str, object]:
    return {
        "countryCode": "GB",
        "partyId": "TWK",
        "type": "RFID",
        "uid": uid,
        "contractId": "GB-TWK-012345678",
        "issuer": f"issuer-{writer}",
        "visualNumber": f"visual-{writer}",
        "valid": True,
        "cacheMode": "ALWAYS",
    }


def test_concurrent_reconfigures_of_one_station_lose_no_setting(shared_service, shared_store):
    """Writers reconfiguring the same station at once, through every worker, lose none of their settings."""
    service, store = shared_service, shared_store
    assert requests.post(f"{service.url}/api/v0/cs/cs001", json={"securityProfile": 0}).status_code == 201

    def reconfigure(writer: int) -> list[int]:
        with requests.Session() as session:
            return [
                session.post(
                    f"{service.url}/api/v0/cs/cs001/reconfigure",
                    json={f"Writer{writer}/Setting{n}": str(n), "Shared/Setting": str(writer)},
                ).status_code
                for n in range(5)
            ]

    with ThreadPoolExecutor(WRITERS) as pool:
        statuses = [status for result in pool.map(reconfigure, range(WRITERS)) for status in result]
    assert statuses == [200] * WRITERS * 5
    settings = {s["name"]: s["value"] for s in store.charge_stations.settings("cs001")}
    assert {f"Writer{w}/Setting{n}" for w in range(WRITERS) for n in range(5)} <= settings.keys()
    assert len(settings) == WRITERS * 5 + 1
    assert settings["Shared/Setting"] in {str(w) for w in range(WRITERS)}


def test_concurrent_upserts_of_one_token_leave_one_whole_record(shared_service, shared_store):
    """Writers upserting the same uid at once leave exactly one of their tokens, never a mix of two."""
    service, store = shared_service, shared_store

    def upsert(writer: int) -> int:
        return requests.post(f"{service.url}/api/v0/token", json=token("SHARED", writer)).status_code

    with ThreadPoolExecutor(WRITERS) as pool:
        assert list(pool.map(upsert, range(WRITERS * 4))) == [201] * WRITERS * 4
    stored = store.tokens.get("SHARED")
    writer = int(stored["issuer"].removeprefix("issuer-"))
    assert stored["visual_number"] == f"visual-{writer}"
    assert store.tokens.page(0, 100) == [stored]


def test_metrics_add_up_across_workers(shared_service):
    """/metrics counts every request, whichever worker served it."""
    service = shared_service

    def lookup(_: int) -> int:
        # A new connection each time, so that the requests spread over the workers.
        return requests.get(f"{service.url}/api/v0/cs/nobody/auth", headers={"Connection": "close"}).status_code

    with ThreadPoolExecutor(WORKERS * 4) as pool:
        assert list(pool.map(lookup, range(120))) == [404] * 120
    text = requests.get(f"{service.url}/metrics").text
    labels = 'listener="api",method="GET",operation="lookupChargeStationAuth",status="404"'
    counted = re.search(rf"maeve_http_requests_total\{{{labels}\}} (\S+)", text)
    assert counted is not None and float(counted[1]) == 120


def test_sigterm_lets_a_request_in_flight_finish(serve, store):
    """A request whose body is still arriving when SIGTERM comes is completed and answered 201."""
    service = serve()
    body = json.dumps(token("INFLIGHT", 1)).encode()
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST /api/v0/token HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body[:10]
        )
        time.sleep(0.3)
        service.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        connection.sendall(body[10:])
        answer = b""
        while chunk := connection.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
    assert service.process.wait(timeout=30) == 0
    assert store.tokens.get("INFLIGHT")["issuer"] == "issuer-1"


def test_sigterm_finishes_in_flight_requests_and_a_restart_loses_nothing_acknowledged(serve, store):
    """Tokens written while the service stops on SIGTERM are refused or kept: none acknowledged is lost."""
    service = serve()
    acknowledged: list[str] = []
    failed_badly: list[str] = []
    lock = threading.Lock()
    halfway = threading.Event()

    def write(writer: int) -> None:
        with requests.Session() as session:
            for n in range(40):
                uid = f"W{writer}N{n}"
                if writer == 0 and n == 10:
                    halfway.set()
                try:
                    response = session.post(f"{service.url}/api/v0/token", json=token(uid, writer), timeout=10)
                except requests.ConnectionError:
                    return  # the service stopped listening: nothing was acknowledged
                with lock:
                    status = response.status_code
                    (acknowledged if status == 201 else failed_badly).append(f"{uid}:{status}")

    threads = [threading.Thread(target=write, args=(writer,)) for writer in range(8)]
    for thread in threads:
        thread.start()
    halfway.wait(timeout=20)
    assert service.stop() == 0
    for thread in threads:
        thread.join(timeout=30)
    assert failed_badly == []
    assert acknowledged, "no write was acknowledged before the stop"

    restarted = serve()
    for entry in acknowledged:
        uid = entry.split(":")[0]
        assert requests.get(f"{restarted.url}/api/v0/token/{uid}").status_code == 200, uid
