"""An OCPI eMSP platform written to the 2.2.1 text, served on loopback, that records every deviation it sees.

It checks what a strict partner would: the handshake order, the token encoding, the OCPI headers, the
envelope of our answers and the Location objects we push. ``deviations`` lists what went wrong; the
fixture serving it fails the test unless that list is empty. Set ``raw_tokens`` and ``version="2.2"`` for
a partner in the style of the reference implementation, which neither sends nor accepts base64 tokens.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
ROUTING = ("ocpi-to-country-code", "ocpi-to-party-id", "ocpi-from-country-code", "ocpi-from-party-id")
TIMEOUT = (1.0, 3.0)


@dataclass
class Received:
    """One request the partner got."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Partner:
    """The eMSP: its tokens, its view of the handshake and what it received."""

    country_code: str = "NL"
    party_id: str = "EMS"
    version: str = "2.2.1"
    raw_tokens: bool = False
    credentials_status: int = 200
    #: "401", "malformed", "no_credentials", "timeout" or "bad_credentials" make one step fail.
    failure: str | None = None
    slow_seconds: float = 0.0
    token_a: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    deviations: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    #: Tokens it accepts from us: A until the handshake ends, then C (the one it issued).
    accepted: set[str] = field(default_factory=set)
    our_token_c: str | None = None
    their_token: str | None = None  # the token it calls the CPO with (B from the CPO, or C it received)
    cpo_versions_url: str | None = None
    steps: list[str] = field(default_factory=list)
    put_status: int = 200
    last_correlation_id: str | None = None
    base_url: str = ""

    def __post_init__(self) -> None:
        self.accepted.add(self.token_a)
        self._server: ThreadingHTTPServer | None = None
        self._port = 0
        self.lock = threading.Lock()

    # Serving

    def start(self) -> None:
        """Serve on loopback (on the same port as before after a stop)."""
        partner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = partner.handle(self.command, self.path, dict(self.headers.items()), raw)
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name in ("X-Request-ID", "X-Correlation-ID"):
                    if self.headers.get(name):
                        self.send_header(name, self.headers[name])
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self._port}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        """Stop serving: connections are refused until the next start."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def versions_url(self) -> str:
        return f"{self.base_url}/ocpi/versions"

    def deviation(self, text: str) -> None:
        with self.lock:
            self.deviations.append(text)

    def pushes(self) -> list[Received]:
        """The location PUTs received."""
        return [r for r in self.received if r.method == "PUT" and "/locations/" in r.path]

    # Checks on what we receive

    def _token(self, headers: dict[str, str]) -> str | None:
        value = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if not value.startswith("Token "):
            self.deviation(f"Authorization is not 'Token <token>': {value[:6]!r}…")
            return None
        encoded = value[len("Token ") :]
        if self.raw_tokens:
            return encoded
        try:
            return base64.b64decode(encoded, validate=True).decode()
        except ValueError:
            return None

    def _headers_ok(self, path: str, headers: dict[str, str], functional: bool) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        for name in ("x-request-id", "x-correlation-id"):
            if not lower.get(name):
                self.deviation(f"{path}: no {name}")
        routing = [name for name in ROUTING if name in lower]
        if functional and len(routing) != len(ROUTING):
            self.deviation(f"{path}: routing headers missing, got {routing}")
        if not functional and routing:
            self.deviation(f"{path}: routing headers on a configuration module: {routing}")

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        """Answer one request, recording deviations."""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self.deviation(f"{method} {path}: body is not JSON")
            body = None
        with self.lock:
            self.received.append(Received(method, path, headers, body))
        if self.slow_seconds:
            time.sleep(self.slow_seconds)
        token = self._token(headers)
        versions_path = "/ocpi/versions"
        details_path = f"/ocpi/{self.version}"
        credentials_path = f"/ocpi/{self.version}/credentials"
        functional = path.startswith("/ocpi/emsp/")
        self._headers_ok(path, headers, functional)
        if token not in self.accepted or (functional and token == self.token_a):
            return 401, self.envelope(None, 2000, "unknown token")
        if method == "GET" and path == versions_path:
            self.steps.append("versions")
            if self.failure == "401":
                return 401, self.envelope(None, 2000, "token A is not ours")
            if self.failure == "malformed":
                return 200, b'{"data": [{"version": '
            if self.failure == "timeout":
                time.sleep(1.5)
            return 200, self.envelope([{"version": self.version, "url": f"{self.base_url}{details_path}"}])
        if method == "GET" and path == details_path:
            if self.steps != ["versions"] and token == self.token_a:
                self.deviation(f"details fetched out of order: {self.steps}")
            self.steps.append("details")
            endpoints = [
                {"identifier": "credentials", "role": "SENDER", "url": f"{self.base_url}{credentials_path}"},
                {"identifier": "credentials", "role": "RECEIVER", "url": f"{self.base_url}{credentials_path}"},
                {"identifier": "locations", "role": "RECEIVER", "url": f"{self.base_url}/ocpi/emsp/locations"},
                {"identifier": "tokens", "role": "SENDER", "url": f"{self.base_url}/ocpi/emsp/tokens"},
            ]
            if self.failure == "no_credentials":
                endpoints = endpoints[2:]
            return 200, self.envelope({"version": self.version, "endpoints": endpoints})
        if method == "POST" and path == credentials_path:
            return self._credentials(token, body)
        if method == "PUT" and path.startswith("/ocpi/emsp/locations/"):
            self._check_location(path, body)
            return self.put_status, self.envelope(None)
        self.deviation(f"unexpected {method} {path}")
        return 404, self.envelope(None, 2000, "no such endpoint")

    def _credentials(self, token: str | None, body: Any) -> tuple[int, Any]:
        """The CPO registers with us: it must have read our versions and details first, with token A."""
        if token != self.token_a:
            self.deviation("credentials POSTed with a token other than A")
            return 405, self.envelope(None, 2000, "already registered")
        if self.steps[:2] != ["versions", "details"]:
            self.deviation(f"credentials POSTed before versions and details: {self.steps}")
        self.steps.append("credentials")
        if self.failure == "bad_credentials":
            return 200, self.envelope({"url": "x"})
        if not isinstance(body, dict) or not {"token", "url", "roles"} <= body.keys():
            self.deviation(f"credentials body incomplete: {body}")
            return 400, self.envelope(None, 2001, "incomplete credentials")
        roles = body["roles"]
        if not any(r.get("role") == "CPO" and r.get("business_details", {}).get("name") for r in roles):
            self.deviation(f"no CPO role with a business name: {roles}")
        token_b = body["token"]
        # The receiver side of the handshake: read the CPO's versions and details with B.
        try:
            versions = self._call("GET", body["url"], token_b)
            chosen = [v for v in versions if v["version"] == self.version]
            if not chosen:
                self.deviation(f"CPO offers no {self.version}: {versions}")
                return 200, self.envelope(None, 3002, "no common version")
            details = self._call("GET", chosen[0]["url"], token_b)
            identifiers = {(e["identifier"], e["role"]) for e in details["endpoints"]}
            if ("locations", "SENDER") not in identifiers or ("credentials", "RECEIVER") not in identifiers:
                self.deviation(f"CPO endpoints incomplete: {identifiers}")
        except Exception as exc:
            self.deviation(f"cannot read the CPO's versions with token B: {exc}")
            return 200, self.envelope(None, 3001, "cannot reach your versions")
        self.their_token = token_b
        self.cpo_versions_url = body["url"]
        self.our_token_c = secrets.token_urlsafe(24)
        self.accepted = {self.our_token_c}
        return self.credentials_status, self.envelope(self.our_credentials(self.our_token_c))

    def our_credentials(self, token: str) -> dict[str, Any]:
        """This eMSP's OCPI credentials object, carrying ``token`` for the CPO to call it with."""
        return {
            "token": token,
            "url": self.versions_url,
            "roles": [
                {
                    "role": "EMSP",
                    "business_details": {"name": "Strict eMSP"},
                    "party_id": self.party_id,
                    "country_code": self.country_code,
                }
            ],
        }

    def _check_location(self, path: str, location: Any) -> None:
        parts = path.split("/")
        if len(parts) != 7 or not isinstance(location, dict):
            self.deviation(f"location PUT to {path} with {location!r}")
            return
        _, _, _, _, country_code, party_id, location_id = parts
        required = {"country_code", "party_id", "id", "publish", "address", "city", "country", "coordinates"}
        required |= {"time_zone", "last_updated"}
        if missing := required - location.keys():
            self.deviation(f"location lacks {sorted(missing)}")
            return
        if (location["country_code"], location["party_id"], location["id"]) != (country_code, party_id, location_id):
            self.deviation(f"location path {path} disagrees with its body")
        if not TIMESTAMP.fullmatch(location["last_updated"]):
            self.deviation(f"last_updated is not UTC RFC 3339: {location['last_updated']}")
        for evse in location.get("evses", []):
            if not {"uid", "status", "connectors", "last_updated"} <= evse.keys():
                self.deviation(f"EVSE incomplete: {evse}")
            for connector in evse["connectors"]:
                needed = {"id", "standard", "format", "power_type", "max_voltage", "max_amperage", "last_updated"}
                if not needed <= connector.keys():
                    self.deviation(f"connector incomplete: {connector}")

    # Calls the partner makes

    def authorization(self, token: str) -> str:
        return f"Token {token if self.raw_tokens else base64.b64encode(token.encode()).decode()}"

    def _call(self, method: str, url: str, token: str, body: Any = None, expect: tuple[int, ...] = (200,)) -> Any:
        """Call the CPO, check its answer is a success envelope echoing our ids, and return its data."""
        response = self.call_cpo(method, url, token, body)
        if response.status_code not in expect:
            raise AssertionError(f"{method} {url}: HTTP {response.status_code} {response.text}")
        return response.json().get("data")

    def check_answer(self, response: requests.Response, request_id: str, correlation_id: str) -> None:
        """Record deviations of an answer from the CPO: envelope, timestamp and echoed ids."""
        if response.headers.get("X-Request-ID") != request_id:
            self.deviation(f"{response.url}: X-Request-ID not echoed")
        if response.headers.get("X-Correlation-ID") != correlation_id:
            self.deviation(f"{response.url}: X-Correlation-ID not echoed")
        if not response.headers.get("Content-Type", "").startswith("application/json"):
            self.deviation(f"{response.url}: content type {response.headers.get('Content-Type')}")
            return
        answer = response.json()
        if not isinstance(answer, dict) or not {"status_code", "timestamp"} <= answer.keys():
            self.deviation(f"{response.url}: not an envelope: {answer}")
            return
        if not TIMESTAMP.fullmatch(answer["timestamp"]):
            self.deviation(f"{response.url}: timestamp not UTC RFC 3339: {answer['timestamp']}")
        if 200 <= response.status_code < 300 and answer["status_code"] != 1000:
            self.deviation(f"{response.url}: HTTP {response.status_code} with status_code {answer['status_code']}")

    def register_with(self, versions_url: str, token_a: str) -> dict[str, Any]:
        """Run the handshake as the sender against a CPO that gave us ``token_a``; returns its credentials."""
        versions = self._call("GET", versions_url, token_a)
        chosen = [v for v in versions if v["version"] == self.version]
        details = self._call("GET", chosen[0]["url"], token_a)
        credentials_url = next(e["url"] for e in details["endpoints"] if e["identifier"] == "credentials")
        token_b = secrets.token_urlsafe(24)
        self.our_token_c = token_b
        self.accepted = {token_b}
        answer: dict[str, Any] = self._call("POST", credentials_url, token_a, self.our_credentials(token_b))
        self.their_token = answer["token"]
        return answer

    def call_cpo(self, method: str, url: str, token: str, body: Any = None) -> requests.Response:
        """A raw call to the CPO with our ids, its answer checked for envelope and headers."""
        request_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        self.last_correlation_id = correlation_id
        response = requests.request(
            method,
            url,
            json=body,
            timeout=TIMEOUT,
            headers={
                "Authorization": self.authorization(token),
                "X-Request-ID": request_id,
                "X-Correlation-ID": correlation_id,
            },
        )
        self.check_answer(response, request_id, correlation_id)
        return response

    @staticmethod
    def envelope(data: Any, status_code: int = 1000, message: str = "Success") -> dict[str, Any]:
        body: dict[str, Any] = {"status_code": status_code, "status_message": message}
        body["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if data is not None:
            body["data"] = data
        return body
