"""Signing station certificates (SignCertificate) with the CA named by MAEVE_OCPP_CA_CERT and MAEVE_OCPP_CA_KEY."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

#: How long a signed station certificate is valid.
VALIDITY = datetime.timedelta(days=365)
MAX_CSR = 5500


class CsrRefused(ValueError):
    """The CSR is not one we sign; the message says why (never echoing it)."""


class CertificateAuthority:
    """A CA certificate and its private key, read once from PEM files."""

    def __init__(self, certificate: x509.Certificate, key: CertificateIssuerPrivateKeyTypes) -> None:
        self.certificate = certificate
        self.key = key

    @classmethod
    def from_files(cls, certificate_path: str, key_path: str) -> CertificateAuthority:
        certificate = x509.load_pem_x509_certificate(Path(certificate_path).read_bytes())
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
        return cls(certificate, key)  # type: ignore[arg-type]

    def sign(self, csr_pem: str, cs_id: str) -> str:
        """The PEM chain (the new certificate, then the CA's) for a CSR whose subject CN is ``cs_id``."""
        if len(csr_pem) > MAX_CSR:
            raise CsrRefused("CSR too long")
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise CsrRefused("not a PEM encoded CSR") from None
        if not csr.is_signature_valid:
            raise CsrRefused("CSR signature invalid")
        names = [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if names != [cs_id]:
            raise CsrRefused("CSR common name is not the station id")
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.certificate.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return "".join(
            c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in (certificate, self.certificate)
        )
