"""Calls to partners' OCPI platforms over HTTP: only to checked addresses, bounded in time, size and number.

Partners are untrusted, and so is every URL they give us:

- The host is resolved once and every address it resolves to must be public (not loopback, private,
  link-local, multicast, reserved or unspecified, in IPv4 or IPv6, IPv4-mapped and 6to4 forms included)
  unless the deployment allows private networks. The connection goes to the address that was checked,
  so a second resolution cannot lead elsewhere; for https the certificate is verified against the
  host name, which is also sent as SNI.
- Redirects are never followed.
- Each call runs in this process's own bounded pool of partner threads, never in the threads serving
  requests, and has a wall-clock deadline; when every partner thread is busy a call fails at once
  instead of queueing. The answer is read in chunks and refused past ``MAX_ANSWER_BYTES``.
- Errors name the step and the kind of failure (HTTP status, timeout, not JSON, OCPI status_code),
  never what the partner wrote; that goes to the log, shortened. Tokens are never part of an error
  message or a log line.

The standard library's ``http.client`` carries the calls rather than ``requests``: ``requests`` sends
through any proxy named in the environment (which resolves the host itself, so the address check could not
hold), pins no address without replacing urllib3's connection pools and their TLS host name handling, and
has no wall-clock deadline, only per-read timeouts that a trickling partner keeps resetting. Each of
those is a few lines on ``http.client``'s connection, whose socket this module owns.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from maeve_api.domain.errors import InvalidInput, PartnerFailed
from maeve_api.ocpi.envelope import SUCCESS

log = logging.getLogger(__name__)

#: How a token goes into ``Authorization``: base64 of its UTF-8 (OCPI 2.2.1), or as it is (2.1.1, many 2.2 peers).
BASE64 = "base64"
RAW = "raw"
#: The largest answer read from a partner; a longer one fails the call.
MAX_ANSWER_BYTES = 1024 * 1024
#: Partner calls in flight at once in one process; further calls fail until one ends.
MAX_CONCURRENT_CALLS = 8
#: How much of a partner's text goes into our log, and into the status message kept for the operator.
MAX_DETAIL = 200
_CHUNK = 64 * 1024
_PRIVATE_RULE = (
    "must resolve to public addresses only (not loopback, private, link-local, multicast or reserved); "
    "set MAEVE_OCPI_ALLOW_PRIVATE_NETWORKS=true for partners on a private network"
)


def authorization(token: str, encoding: str) -> str:
    """The ``Authorization`` value carrying ``token`` in ``encoding`` (BASE64 or RAW)."""
    value = base64.b64encode(token.encode()).decode() if encoding == BASE64 else token
    return f"Token {value}"


def shorten(text: str, limit: int = MAX_DETAIL) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class PartnerAnswered(PartnerFailed):
    """The partner answered, but not with success: its HTTP status and, if it sent an envelope, its OCPI status.

    ``status_message`` is the partner's own text, shortened: for the log and the operator's read-back,
    never for an answer to a partner.
    """

    def __init__(
        self,
        step: str,
        detail: str,
        http_status: int,
        status_code: int | None = None,
        status_message: str | None = None,
    ) -> None:
        super().__init__(step, detail)
        self.http_status = http_status
        self.status_code = status_code
        self.status_message = status_message

    @property
    def final(self) -> bool:
        """Whether sending the same request again cannot help: a 4xx other than 408 and 429, or an OCPI 2xxx."""
        if 400 <= self.http_status < 500:
            return self.http_status not in (408, 429)
        return self.status_code is not None and 2000 <= self.status_code < 3000


class PartnerUnauthorized(PartnerAnswered):
    """The partner answered 401: it does not accept the token, at least not in this encoding."""


class AddressRefused(PartnerFailed):
    """The URL is not one we call: not http(s), or its host resolves to an address that is not public."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect, and what to say in the request line, ``Host`` and SNI."""

    scheme: str
    host: str
    port: int
    address: str
    target: str


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether the address is anything but a public unicast address, looking through IPv6's IPv4 forms."""
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4-mapped, IPv4-compatible (deprecated) and NAT64 addresses reach the IPv4 address they carry.
        carried = address.ipv4_mapped
        if carried is None and (address in _COMPATIBLE or address in _NAT64) and int(address) > 0xFFFF:
            carried = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if carried is not None:
            return _refused(carried)
        # 6to4 and Teredo addresses embed an IPv4 address too; refuse them if it is not public.
        embedded = address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None and _refused(embedded):
            return True
    return not address.is_global or address.is_multicast or address.is_reserved or address.is_unspecified


_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def check_url(url: str, allow_private: bool, step: str = "check the URL") -> Target:
    """Resolve ``url``'s host and return where to connect; raises AddressRefused naming the rule broken."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise AddressRefused(step, "the URL is not a valid http or https URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressRefused(step, "the URL must be an http or https URL with a host")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused(step, "the URL must not carry a user name or password")
    port = port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise AddressRefused(step, "the URL's host does not resolve") from None
    addresses = []
    for _family, _type, _proto, _name, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if not allow_private and _refused(address):
            raise AddressRefused(step, f"the URL's host {_PRIVATE_RULE}")
        addresses.append(str(address))
    if not addresses:
        raise AddressRefused(step, "the URL's host does not resolve")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, addresses[0], target)


def check_operator_url(url: str, allow_private: bool) -> None:
    """Refuse a partner URL given on the internal API: raises InvalidInput naming ``url`` and the rule."""
    try:
        check_url(url, allow_private, "url")
    except AddressRefused as exc:
        raise InvalidInput("url", exc.detail) from None


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a checked address; ``Host`` still names the host."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to a checked address, verifying the certificate for the host name sent as SNI."""

    def __init__(self, target: Target, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._address = target.address
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        try:
            self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


@dataclass
class _Answer:
    status: int
    content_type: str
    body: bytes


class _TooLarge(Exception):
    pass


class _DeadlinePassed(Exception):
    pass


_POOL_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None
_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_CALLS)


def _pool() -> ThreadPoolExecutor:
    """This process's partner threads, started on first use (after gunicorn forks)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(MAX_CONCURRENT_CALLS, thread_name_prefix="ocpi-partner")
        return _POOL


_TLS_LOCK = threading.Lock()
_TLS_CONTEXT: ssl.SSLContext | None = None


def _default_tls_context() -> ssl.SSLContext:
    """One context with the system's CAs for every https call of this process: loading them takes milliseconds of
    CPU, once per client made for each registration and push otherwise."""
    global _TLS_CONTEXT
    with _TLS_LOCK:
        if _TLS_CONTEXT is None:
            _TLS_CONTEXT = ssl.create_default_context()
        return _TLS_CONTEXT


class PartnerClient:
    """Calls to partners; every call raises PartnerFailed naming its step.

    ``deadline`` bounds a whole call (connect, send, every read); ``read_timeout`` each read.
    """

    def __init__(
        self,
        connect_timeout: float,
        read_timeout: float,
        *,
        allow_private_networks: bool = False,
        deadline: float = 30.0,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = (connect_timeout, read_timeout)
        self.allow_private_networks = allow_private_networks
        self.deadline = deadline
        self.max_answer_bytes = max_answer_bytes
        #: None: the process's default context (the system's CAs), made at the first https call.
        self.tls_context = tls_context

    @classmethod
    def for_settings(cls, settings: Any) -> PartnerClient:
        """The client the settings describe (timeouts, deadline, whether private networks may be called)."""
        return cls(
            settings.ocpi_connect_timeout,
            settings.ocpi_read_timeout,
            allow_private_networks=settings.ocpi_allow_private_networks,
            deadline=settings.ocpi_call_deadline_seconds,
        )

    def close(self) -> None:
        """Nothing to release: every call opens and closes its own connection."""

    def call(
        self,
        step: str,
        method: str,
        url: str,
        token: str,
        encoding: str,
        body: Any = None,
        routing: Mapping[str, str] | None = None,
        correlation_id: str | None = None,
        deadline: float | None = None,
    ) -> Any:
        """Send one OCPI request and return the ``data`` of a 2xx answer whose ``status_code`` is 1000.

        ``routing`` adds the OCPI-to/from headers (functional modules only); ``deadline`` shortens this
        call's deadline. Raises PartnerUnauthorized for a 401, AddressRefused for a URL we do not call
        and PartnerFailed (PartnerAnswered when the partner answered) for anything else that is not a success.
        """
        headers = {
            "Authorization": authorization(token, encoding),
            "Accept": "application/json",
            "X-Request-ID": str(uuid.uuid4()),
            "X-Correlation-ID": correlation_id or str(uuid.uuid4()),
            **(routing or {}),
        }
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body, ensure_ascii=False).encode()
        limit = self.deadline if deadline is None else max(0.0, min(deadline, self.deadline))
        if not _SLOTS.acquire(timeout=0.05):
            raise PartnerFailed(step, "too many calls to partners in progress, try again shortly")
        connection: list[socket.socket] = []
        until = time.monotonic() + limit

        def run() -> _Answer:
            try:
                # Resolved here, so that a partner's slow name server is bounded like the rest of the call.
                target = check_url(url, self.allow_private_networks, step)
                return self._exchange(target, method, headers, payload, until, connection)
            finally:
                _SLOTS.release()

        try:
            future = _pool().submit(run)
        except BaseException:
            _SLOTS.release()
            raise
        try:
            answer = future.result(timeout=limit + 0.5)
        except (FutureTimeout, _DeadlinePassed):
            _abort(connection)
            raise PartnerFailed(step, f"timeout: no answer in full within the deadline of {limit:g} s") from None
        except TimeoutError:
            raise PartnerFailed(step, f"timeout: no answer within {self.timeout[1]:g} s") from None
        except _TooLarge:
            raise PartnerFailed(step, f"the answer is larger than {self.max_answer_bytes} bytes") from None
        except ssl.SSLError:
            raise PartnerFailed(step, "TLS failed (certificate or handshake)") from None
        except (OSError, http.client.HTTPException) as exc:
            log.warning("%s (%s) failed: %s", step, method, type(exc).__name__)
            raise PartnerFailed(step, "cannot connect, or the connection failed") from None
        return _data(step, answer)

    def _exchange(
        self,
        target: Target,
        method: str,
        headers: Mapping[str, str],
        payload: bytes | None,
        until: float,
        opened: list[socket.socket],
    ) -> _Answer:
        connect_timeout, read_timeout = self.timeout

        def remaining(cap: float) -> float:
            left = until - time.monotonic()
            if left <= 0:
                raise _DeadlinePassed
            return min(cap, left)

        connection: http.client.HTTPConnection
        if target.scheme == "https":
            context = self.tls_context or _default_tls_context()
            connection = _PinnedHTTPSConnection(target, remaining(connect_timeout), context)
        else:
            connection = _PinnedHTTPConnection(target, remaining(connect_timeout))
        try:
            connection.connect()
            sock = connection.sock
            assert sock is not None
            opened.append(sock)  # the response reads from it even after the connection lets go of it
            connection.request(method, target.target, body=payload, headers=dict(headers))
            sock.settimeout(remaining(read_timeout))
            response = connection.getresponse()
            chunks: list[bytes] = []
            size = 0
            while True:
                sock.settimeout(remaining(read_timeout))
                chunk = response.read1(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_answer_bytes:
                    raise _TooLarge
                chunks.append(chunk)
            return _Answer(response.status, response.getheader("Content-Type") or "", b"".join(chunks))
        finally:
            connection.close()


def _abort(opened: list[socket.socket]) -> None:
    """Cut a call that outlived its deadline, so that its thread is free again."""
    for sock in opened:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _envelope(answer: _Answer) -> dict[str, Any] | None:
    try:
        parsed = json.loads(answer.body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _data(step: str, answer: _Answer) -> Any:
    """The ``data`` of a successful OCPI answer; raises PartnerFailed describing any other by its kind only."""
    envelope = _envelope(answer)
    status_code = envelope.get("status_code") if envelope else None
    if not isinstance(status_code, int) or isinstance(status_code, bool) or not 0 <= status_code <= 9999:
        status_code = None
    message = envelope.get("status_message") if envelope else None
    said = shorten(message) if isinstance(message, str) else None
    code = f", OCPI status_code {status_code}" if status_code is not None else ""
    succeeded = 200 <= answer.status < 300 and status_code == SUCCESS
    if not succeeded and (said or (envelope is None and answer.body)):
        log.warning(
            "%s: the partner answered HTTP %d%s: %r",
            step,
            answer.status,
            code,
            said if said is not None else shorten(answer.body[:1000].decode("utf-8", "replace")),
        )
    if answer.status == 401:
        raise PartnerUnauthorized(
            step, f"HTTP 401, the partner refused our token{code}", answer.status, status_code, said
        )
    if not 200 <= answer.status < 300:
        raise PartnerAnswered(step, f"HTTP {answer.status}{code}", answer.status, status_code, said)
    if envelope is None:
        raise PartnerAnswered(
            step, f"HTTP {answer.status} with a body that is not an OCPI envelope in JSON", answer.status
        )
    if status_code != SUCCESS:
        kind = f"OCPI status_code {status_code}" if status_code is not None else "no OCPI status_code"
        raise PartnerAnswered(step, f"HTTP {answer.status}, {kind}", answer.status, status_code, said)
    return envelope.get("data")
