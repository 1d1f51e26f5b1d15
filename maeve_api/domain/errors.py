"""Errors raised by domain rules; they carry no HTTP, the app's error mapping owns status codes."""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors the domain raises for requests it refuses."""


class InvalidInput(DomainError):
    """A value the spec admits but a domain rule refuses; maps to 400.

    ``field`` is the wire name of the offending field, ``reason`` the rule it broke.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Conflict(DomainError):
    """The request contradicts the stored state; maps to 409."""


class NotSupported(DomainError):
    """The request asks for something this deployment does not offer; maps to 501."""


class PartnerFailed(DomainError):
    """A roaming partner's platform was unreachable or refused a step of a call to it; maps to 502.

    ``step`` names what we were doing (``GET versions``), ``detail`` what the partner did or said.
    """

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"{step}: {detail}")
        self.step = step
        self.detail = detail


class MissingEndpoints(PartnerFailed):
    """A partner does not offer a module this platform needs from it; maps to 502 (OCPI status 3003)."""
