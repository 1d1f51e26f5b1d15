"""Typed settings read once from the ``MAEVE_*`` environment variables."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_DATABASE_URL = "sqlite:///var/maeve.db"


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured with; build it with ``from_env`` or directly in tests."""

    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    host: str = "127.0.0.1"
    api_port: int = 9410
    ocpi_port: int = 9411
    workers: int = 2
    max_body_bytes: int = 1024 * 1024
    validate_responses: bool = False
    log_level: str = "info"

    def __post_init__(self) -> None:
        if not self.database_url.startswith(("sqlite:", "mongodb:", "mongodb+srv:")):
            raise SettingsError("MAEVE_DATABASE_URL must start with sqlite:, mongodb: or mongodb+srv:")

    @property
    def redacted_database_url(self) -> str:
        """The database URL with any password replaced, safe to log."""
        return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", self.database_url)

    def __repr__(self) -> str:
        return (
            f"Settings(database_url={self.redacted_database_url!r}, host={self.host!r}, "
            f"api_port={self.api_port}, ocpi_port={self.ocpi_port}, workers={self.workers}, "
            f"max_body_bytes={self.max_body_bytes}, validate_responses={self.validate_responses}, "
            f"log_level={self.log_level!r})"
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from the environment; raises SettingsError naming a bad variable."""
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            database_url=env.get("MAEVE_DATABASE_URL", DEFAULT_DATABASE_URL),
            host=env.get("MAEVE_HOST", defaults.host),
            api_port=_int(env, "MAEVE_API_PORT", defaults.api_port, 1, 65535),
            ocpi_port=_int(env, "MAEVE_OCPI_PORT", defaults.ocpi_port, 1, 65535),
            workers=_int(env, "MAEVE_WORKERS", defaults.workers, 1, 64),
            max_body_bytes=_int(env, "MAEVE_MAX_BODY_BYTES", defaults.max_body_bytes, 1024, 64 * 1024 * 1024),
            validate_responses=_bool(env, "MAEVE_VALIDATE_RESPONSES", defaults.validate_responses),
            log_level=_choice(env, "MAEVE_LOG_LEVEL", defaults.log_level, ("debug", "info", "warning", "error")),
        )


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw.lower()
