"""The partner client: which addresses it calls, that it connects to the address it checked, TLS by host name."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from maeve_api.domain.errors import PartnerFailed
from maeve_api.ocpi import client as client_module
from maeve_api.ocpi.client import AddressRefused, PartnerClient, check_url
from tests.ocpi.hostile import HostileServer, Reply, ocpi_answer


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.0.9",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "198.18.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "ff0e::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",
        "64:ff9b::a00:1",
        "2002:7f00:1::1",
        "2002:a00:1::1",
    ],
)
def test_non_public_addresses_are_refused(address):
    """Loopback, private, shared, link-local, multicast, reserved, documentation and unspecified addresses, and the
    IPv6 forms that carry such an IPv4 address, are never called."""
    assert client_module._refused(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_called(address):
    """Public unicast addresses, IPv4 mapped into IPv6 included, are called."""
    assert not client_module._refused(ipaddress.ip_address(address))


def _resolving(monkeypatch, answers: dict[str, list[str]], calls: list[str] | None = None) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if calls is not None:
            calls.append(host)
        if host not in answers:
            return real(host, port, *args, **kwargs)  # an address literal, as socket.create_connection passes
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers[host]
        ]

    monkeypatch.setattr(client_module.socket, "getaddrinfo", getaddrinfo)


def test_a_host_with_any_private_address_is_refused(monkeypatch):
    """A name resolving to a public and a private address is refused: either could be the one connected to."""
    _resolving(monkeypatch, {"partner.example": ["93.184.215.14", "10.0.0.7"]})
    with pytest.raises(AddressRefused, match="public"):
        check_url("https://partner.example/ocpi/versions", allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://partner.example/",
        "file:///etc/passwd",
        "http:///nohost",
        "https://user:pw@partner.example/",
        "http://[::1",
    ],
)
def test_urls_we_never_call(monkeypatch, url):
    """Other schemes, URLs without a host, with credentials, or unparsable are refused before any lookup."""
    _resolving(monkeypatch, {"partner.example": ["93.184.215.14"]})
    with pytest.raises(AddressRefused):
        check_url(url, allow_private=True)


def test_the_connection_goes_to_the_address_checked(monkeypatch):
    """The host is resolved once, the connection goes to that address, and Host still names the host: a second
    resolution (DNS rebinding) cannot send the call elsewhere."""
    server = HostileServer(lambda _request: Reply(200, body=ocpi_answer(["ok"])))
    calls: list[str] = []
    try:
        _resolving(monkeypatch, {"partner.test": ["127.0.0.1"]}, calls)
        client = PartnerClient(1.0, 1.0, allow_private_networks=True)
        data = client.call("GET versions", "GET", f"http://partner.test:{server.port}/ocpi/versions", "t", "base64")
    finally:
        server.stop()
    assert data == ["ok"]
    assert [host for host in calls if host == "partner.test"] == ["partner.test"]
    assert server.received[0].headers["host"] == f"partner.test:{server.port}"
    assert server.received[0].path == "/ocpi/versions"


def _certificate(tmp_path: Path, host: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server on loopback with a certificate for partner.test, recording the SNI it was sent."""
    cert_file, key_file = _certificate(tmp_path, "partner.test")
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args):
            pass

        def do_GET(self):
            body = ocpi_answer(["tls"])
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda _sock, name, _ctx: seen.append(name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    trusted = ssl.create_default_context(cafile=str(cert_file))
    yield server.server_address[1], trusted, seen
    server.shutdown()
    server.server_close()


def test_https_verifies_the_host_name_and_sends_it_as_sni(monkeypatch, tls_server):
    """Over https to the checked address, the certificate is verified for the URL's host, named in SNI."""
    port, trusted, seen = tls_server
    _resolving(monkeypatch, {"partner.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    client = PartnerClient(1.0, 1.0, allow_private_networks=True, tls_context=trusted)
    assert client.call("GET versions", "GET", f"https://partner.test:{port}/ocpi/versions", "t", "base64") == ["tls"]
    assert seen[-1] == "partner.test"
    with pytest.raises(PartnerFailed, match="TLS"):
        client.call("GET versions", "GET", f"https://other.test:{port}/ocpi/versions", "t", "base64")


def test_a_call_when_every_partner_thread_is_busy_fails_at_once(monkeypatch):
    """When all partner threads are taken, a call fails at once instead of queueing behind them."""
    server = HostileServer(lambda _request: Reply(200, body=ocpi_answer([])))
    monkeypatch.setattr(client_module, "_SLOTS", threading.BoundedSemaphore(1))
    client_module._SLOTS.acquire()
    try:
        with pytest.raises(PartnerFailed, match="too many"):
            PartnerClient(1.0, 1.0, allow_private_networks=True).call(
                "GET versions", "GET", f"{server.url}/ocpi/versions", "t", "base64"
            )
    finally:
        client_module._SLOTS.release()
        server.stop()
    assert server.received == []
