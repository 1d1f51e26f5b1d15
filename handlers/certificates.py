"""Handlers for client certificates checked by a TLS-offloading load balancer."""

from __future__ import annotations

from typing import Any

from connexion import request

from maeve_api.domain.certificates import client_certificate_hash, load_pem_certificate, normalize_certificate_hash
from maeve_api.web.context import read, storage


def upload_certificate(body: dict[str, str]) -> tuple[None, int, dict[str, str]]:
    pem = body["certificate"]
    certificate_hash = client_certificate_hash(load_pem_certificate(pem, "certificate"))
    storage().certificates.put(certificate_hash, pem)
    return None, 201, {"Location": f"{request.url.path}/{certificate_hash}"}


async def lookup_certificate(certificate_hash: str) -> tuple[dict[str, Any], int]:
    certificate = await read(storage().certificates.get, normalize_certificate_hash(certificate_hash))
    return {"certificate": certificate["pem"]}, 200


def delete_certificate(certificate_hash: str) -> tuple[None, int]:
    storage().certificates.remove(normalize_certificate_hash(certificate_hash))
    return None, 204
