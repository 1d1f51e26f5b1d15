"""Errors of the OCPI modules; they carry an OCPI status code, the OCPI app's error mapping owns HTTP."""

from __future__ import annotations


class OcpiError(Exception):
    """Base of the OCPI-level refusals; ``status_code`` is the OCPI status code of the answer."""

    status_code = 2000


class InvalidParameters(OcpiError):
    """The request's parameters or body contradict each other or a rule of the module (2001)."""

    status_code = 2001


class UnknownLocation(OcpiError):
    """No such location, EVSE or connector (2003)."""

    status_code = 2003


class UnknownToken(OcpiError):
    """No such token (2004)."""

    status_code = 2004


class RegistrationState(OcpiError):
    """The credentials method does not fit the caller's registration: POST when registered, PUT or DELETE when not.

    ``allow`` lists the methods that do fit, for the ``Allow`` header of the 405.
    """

    def __init__(self, message: str, allow: str | None = None) -> None:
        super().__init__(message)
        self.allow = allow


class IdentityRefused(OcpiError):
    """A party identity claimed in credentials is ours, another registered party's, or not the one the token was
    registered for (2001); nothing was changed."""

    status_code = 2001


class OutOfScope(OcpiError):
    """The caller's token does not reach this module or this party's objects (2001)."""

    status_code = 2001
