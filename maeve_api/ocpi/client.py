"""Calls to partners' OCPI platforms over HTTP, each with connect and read timeouts and the OCPI headers."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from typing import Any

import requests

from maeve_api.errors import PartnerFailed
from maeve_api.ocpi.envelope import SUCCESS

#: How a token goes into ``Authorization``: base64 of its UTF-8 (OCPI 2.2.1), or as it is (2.1.1, many 2.2 peers).
BASE64 = "base64"
RAW = "raw"
_MAX_DETAIL = 200


def authorization(token: str, encoding: str) -> str:
    """The ``Authorization`` value carrying ``token`` in ``encoding`` (BASE64 or RAW)."""
    value = base64.b64encode(token.encode()).decode() if encoding == BASE64 else token
    return f"Token {value}"


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


class PartnerUnauthorized(PartnerFailed):
    """The partner answered 401: it does not accept the token, at least not in this encoding."""


class PartnerClient:
    """One ``requests`` session for calls to partners; every call raises PartnerFailed naming its step.

    Tokens are never part of an error message or a log line.
    """

    def __init__(self, connect_timeout: float, read_timeout: float, session: requests.Session | None = None) -> None:
        self.timeout = (connect_timeout, read_timeout)
        self.session = session or requests.Session()

    def close(self) -> None:
        """Release the session's connections."""
        self.session.close()

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
    ) -> Any:
        """Send one OCPI request and return the ``data`` of a 2xx answer whose ``status_code`` is 1000.

        ``routing`` adds the OCPI-to/from headers (functional modules only). Raises PartnerUnauthorized
        for a 401 and PartnerFailed for anything else that is not a success.
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
        try:
            response = self.session.request(
                method, url, headers=headers, data=payload, timeout=self.timeout, allow_redirects=False
            )
        except requests.Timeout:
            raise PartnerFailed(step, f"no answer from {url} within {self.timeout[1]:g} s") from None
        except requests.ConnectionError:
            raise PartnerFailed(step, f"cannot connect to {url}") from None
        except requests.RequestException as exc:
            raise PartnerFailed(step, f"request to {url} failed ({type(exc).__name__})") from None
        return _data(step, response)


def _data(step: str, response: requests.Response) -> Any:
    """The ``data`` of a successful OCPI answer; raises PartnerFailed describing any other."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    said = ""
    if isinstance(answer, dict):
        said = f": status_code {answer.get('status_code')}, {_shorten(str(answer.get('status_message', '')))!r}"
    elif response.content:
        said = f": {_shorten(response.text)!r}"
    if response.status_code == 401:
        raise PartnerUnauthorized(step, f"HTTP 401, the partner refused our token{said}")
    if not 200 <= response.status_code < 300:
        raise PartnerFailed(step, f"HTTP {response.status_code}{said}")
    if not isinstance(answer, dict):
        raise PartnerFailed(step, f"HTTP {response.status_code} with a body that is not an OCPI envelope in JSON")
    if answer.get("status_code") != SUCCESS:
        raise PartnerFailed(step, f"HTTP {response.status_code}{said}")
    return answer.get("data")
