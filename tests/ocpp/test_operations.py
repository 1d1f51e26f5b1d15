"""Running the endpoint: proxy trust off, a signing CA, and the store going down and coming back (stores
written by the previous release: tests/upgrade)."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.exceptions import InternalError
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from tests.conftest import start_nx, stop_process
from tests.factories import make_certificate_pem
from tests.ocpp.conftest import connect, refused_with, start_service

pytestmark = pytest.mark.anyio


def _ca(directory: Path) -> tuple[Path, Path, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CSMS CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "ca.pem", directory / "ca.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path, certificate


def _csr(common_name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])).sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def untrusting(tmp_path_factory):
    """A service that trusts no proxy headers and signs station certificates with its own CA (SQLite)."""
    directory = tmp_path_factory.mktemp("untrusting")
    cert_path, key_path, certificate = _ca(directory)
    service = start_service(f"sqlite:///{directory / 'maeve.db'}", directory,
                            {"MAEVE_OCPP_CA_CERT": str(cert_path), "MAEVE_OCPP_CA_KEY": str(key_path)})
    service.ca = certificate
    yield service
    service.stop()


async def test_without_proxy_trust_forwarded_headers_are_ignored(untrusting):
    tls = untrusting.register(profile=1)
    assert await refused_with(untrusting, tls, headers={"X-Forwarded-Proto": "https"}) == 401
    certified = untrusting.register(profile=2, password=None)
    pem = make_certificate_pem(certified)
    assert untrusting.post("/certificate", {"certificate": pem}).status_code == 201
    headers = {"X-Forwarded-Proto": "https", "X-Client-Cert-Chain-Verified": "SUCCESS", "X-Client-Cert": quote(pem)}
    assert await refused_with(untrusting, certified, None, headers=headers) == 401
    async with connect(untrusting, untrusting.register(), boot=True):
        pass


async def test_sign_certificate_is_signed_by_the_configured_ca(untrusting):
    cs_id = untrusting.register()
    async with connect(untrusting, cs_id, boot=True) as station:
        refused = await station.call(call201.SignCertificate(csr=_csr("someone-else")), suppress=False)
        assert refused.status == "Rejected"
        accepted = await station.call(call201.SignCertificate(csr=_csr(cs_id)), suppress=False)
        assert accepted.status == "Accepted"
        _, signed = await station.next_call("CertificateSigned")
        chain = x509.load_pem_x509_certificates(signed["certificate_chain"].encode())
        assert chain[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == cs_id
        assert chain[0].issuer == untrusting.ca.subject
        chain[0].verify_directly_issued_by(untrusting.ca)
        assert signed["certificate_type"] == "ChargingStationCertificate"
    async with connect(untrusting, cs_id, version="1.6", boot=True) as station:
        assert (await station.call(call16.SignCertificate(csr=_csr(cs_id)), suppress=False)).status == "Accepted"
        _, signed = await station.next_call("CertificateSigned")
        assert x509.load_pem_x509_certificates(signed["certificate_chain"].encode())[0].issuer == untrusting.ca.subject


async def test_the_store_going_down_gets_internal_errors_and_service_resumes(tmp_path):
    process, uri = start_nx(tmp_path)
    port = int(uri.rsplit(":", 1)[1])
    # The default 2 s wait for a server is the API's probes' and the storage's tests' to check; half a second here.
    service = start_service(f"{uri}/maeve?serverSelectionTimeoutMS=500", tmp_path)
    try:
        cs_id = service.register()
        async with connect(service, cs_id, boot=True) as station:
            stop_process(process)
            with pytest.raises(InternalError):
                await station.call(call201.Authorize(id_token={"id_token": "X", "type": "ISO14443"}), suppress=False)
            assert await refused_with(service, cs_id) == 503
            process, _ = start_nx(tmp_path, port)
            # The in-memory server came back empty: the token is unknown, but the store answers again.
            async def answered() -> str:
                result = await station.call(call201.Authorize(id_token={"id_token": "X", "type": "ISO14443"}),
                                            suppress=False)
                return str(result.id_token_info["status"])

            deadline = asyncio.get_running_loop().time() + 10
            while True:
                try:
                    assert await answered() == "Unknown"
                    break
                except InternalError:
                    if asyncio.get_running_loop().time() > deadline:
                        raise
                    await asyncio.sleep(0.2)
            assert (await station.call(call201.Heartbeat(), suppress=False)).current_time
    finally:
        service.stop()
        stop_process(process)
