"""Typed settings read once from the ``MAEVE_*`` environment variables."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
    #: Where partners reach the OCPI listener; our versions URL is this plus ``/ocpi/versions``.
    #: Empty means ``http://localhost:<ocpi_port>``.
    ocpi_external_url: str = ""
    ocpi_country_code: str = "GB"
    ocpi_party_id: str = "TWK"
    ocpi_business_name: str = "MaEVe"
    #: IANA time zone published with locations, which the internal API does not ask for.
    ocpi_time_zone: str = "UTC"
    #: Seconds to connect to a partner, and to wait for each read of its answer.
    ocpi_connect_timeout: float = 5.0
    ocpi_read_timeout: float = 10.0
    #: Location pushes: how often each worker looks for due pushes, how long a claimed push is
    #: reserved for the worker sending it, and the first and the longest delay between retries.
    push_poll_seconds: float = 1.0
    push_lease_seconds: float = 60.0
    push_backoff_seconds: float = 2.0
    push_backoff_max_seconds: float = 600.0
    #: The OCPP websocket endpoint: where it listens, the heartbeat interval given at boot, whether TLS and
    #: client certificates are read from a trusted proxy's headers, and the CA that signs station certificates.
    ocpp_host: str = "127.0.0.1"
    ocpp_port: int = 9310
    ocpp_heartbeat_interval: int = 300
    ocpp_trust_proxy: bool = False
    ocpp_ca_cert: str | None = None
    ocpp_ca_key: str | None = field(default=None, repr=False)
    #: Seconds to wait for a station's answer; attempts before an unanswered or refused item is Failed,
    #: and the first delay between them (doubled each time); how often each worker looks for staged changes.
    ocpp_call_timeout: float = 30.0
    ocpp_max_attempts: int = 3
    ocpp_retry_seconds: float = 5.0
    ocpp_poll_seconds: float = 0.15
    #: Where each listener binds (MAEVE_API_HOST, MAEVE_OCPI_HOST); MAEVE_HOST, the earlier single setting, is the
    #: default of both when set. ``host`` keeps what MAEVE_HOST said and binds nothing.
    api_host: str = "127.0.0.1"
    ocpi_host: str = "127.0.0.1"
    #: Whether partner calls may go to loopback, private, link-local and other non-public addresses.
    ocpi_allow_private_networks: bool = False
    #: The longest a whole partner call may take; shorter than the push lease, so a push never outlives it.
    ocpi_call_deadline_seconds: float = 30.0
    #: How long a push that keeps failing (5xx, timeouts, network errors) is retried before it is given up.
    push_give_up_seconds: float = 24 * 3600.0

    def __post_init__(self) -> None:
        if not self.ocpi_external_url:
            object.__setattr__(self, "ocpi_external_url", f"http://localhost:{self.ocpi_port}")
        ports = {"MAEVE_API_PORT": self.api_port, "MAEVE_OCPI_PORT": self.ocpi_port, "MAEVE_OCPP_PORT": self.ocpp_port}
        for first, second in itertools.combinations(ports, 2):
            if ports[first] == ports[second]:
                raise SettingsError(f"{first} and {second} must differ; both are {ports[first]}")
        if not self.database_url.startswith(("sqlite:", "mongodb:", "mongodb+srv:")):
            raise SettingsError("MAEVE_DATABASE_URL must start with sqlite:, mongodb: or mongodb+srv:")
        if not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", self.ocpi_external_url):
            raise SettingsError(f"MAEVE_OCPI_EXTERNAL_URL must be an http(s) URL, got {self.ocpi_external_url!r}")
        if len(self.ocpi_external_url.rstrip("/")) > 232:
            # OCPI's URL is string(255), and the longest we publish adds /ocpi/2.2.1/credentials (23 characters).
            raise SettingsError("MAEVE_OCPI_EXTERNAL_URL must be at most 232 characters long, to fit OCPI's URLs")
        if not re.fullmatch(r"[A-Z]{2}", self.ocpi_country_code):
            raise SettingsError(f"MAEVE_OCPI_COUNTRY_CODE must be two capital letters, got {self.ocpi_country_code!r}")
        if not re.fullmatch(r"[A-Z0-9]{3}", self.ocpi_party_id):
            raise SettingsError(
                f"MAEVE_OCPI_PARTY_ID must be three capital letters or digits, got {self.ocpi_party_id!r}"
            )
        if not 1 <= len(self.ocpi_business_name) <= 100:
            raise SettingsError("MAEVE_OCPI_BUSINESS_NAME must be 1 to 100 characters long")
        try:
            ZoneInfo(self.ocpi_time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                f"MAEVE_OCPI_TIME_ZONE must be an IANA time zone such as Europe/London, got {self.ocpi_time_zone!r}"
            ) from None
        if (self.ocpp_ca_cert is None) != (self.ocpp_ca_key is None):
            raise SettingsError("MAEVE_OCPP_CA_CERT and MAEVE_OCPP_CA_KEY must be set together")
        if not 0 < self.ocpi_call_deadline_seconds < self.push_lease_seconds:
            raise SettingsError("the partner call deadline must be positive and shorter than the push lease")

    @property
    def sqlite_path(self) -> Path | None:
        """The database file of a ``sqlite:`` URL (relative to the working directory), else None."""
        if not self.database_url.startswith("sqlite:"):
            return None
        from maeve_api.storage.sqlite import path_from_url

        try:
            return Path(path_from_url(self.database_url))
        except ValueError as exc:
            raise SettingsError(f"MAEVE_DATABASE_URL: {exc}") from None

    @property
    def store_description(self) -> str:
        """Which store is used, safe to log: the SQLite file, or MongoDB's hosts and database without
        credentials or options."""
        path = self.sqlite_path
        if path is not None:
            return f"sqlite:{path.resolve()}"
        parts = urlsplit(self.database_url)
        hosts = parts.netloc.rsplit("@", 1)[-1]
        return f"{parts.scheme}://{hosts}/{parts.path.lstrip('/') or 'maeve'}"

    def check_store(self) -> None:
        """Raise SettingsError if the SQLite database's directory does not exist; nothing is created."""
        path = self.sqlite_path
        if path is not None and not path.parent.is_dir():
            raise SettingsError(
                f"MAEVE_DATABASE_URL names a SQLite file in {str(path.parent)!r}, which is not an existing directory"
            )

    def summary(self) -> dict[str, object]:
        """What the service runs with, safe to log: the store without credentials, each listener's address
        and the OCPI versions URL we advertise."""
        return {
            "store": self.store_description,
            "listeners": {
                "api": f"http://{self.api_host}:{self.api_port}",
                "ocpi": f"http://{self.ocpi_host}:{self.ocpi_port}",
                "ocpp": f"ws://{self.ocpp_host}:{self.ocpp_port}/ws/{{csId}}",
            },
            "ocpi_versions_url": f"{self.ocpi_external_url.rstrip('/')}/ocpi/versions",
            "workers": self.workers,
        }

    @property
    def redacted_database_url(self) -> str:
        """The database URL with any password replaced, safe to log."""
        return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", self.database_url)

    def __repr__(self) -> str:
        shown = (
            f"{item.name}={self.redacted_database_url if item.name == 'database_url' else getattr(self, item.name)!r}"
            for item in fields(self)
            if item.repr or item.name == "database_url"
        )
        return f"Settings({', '.join(shown)})"

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
            ocpi_external_url=env.get("MAEVE_OCPI_EXTERNAL_URL", ""),
            ocpi_country_code=env.get("MAEVE_OCPI_COUNTRY_CODE") or defaults.ocpi_country_code,
            ocpi_party_id=env.get("MAEVE_OCPI_PARTY_ID") or defaults.ocpi_party_id,
            ocpi_business_name=env.get("MAEVE_OCPI_BUSINESS_NAME") or defaults.ocpi_business_name,
            ocpi_time_zone=env.get("MAEVE_OCPI_TIME_ZONE") or defaults.ocpi_time_zone,
            ocpp_host=env.get("MAEVE_OCPP_HOST") or defaults.ocpp_host,
            ocpp_port=_int(env, "MAEVE_OCPP_PORT", defaults.ocpp_port, 1, 65535),
            ocpp_heartbeat_interval=_int(
                env, "MAEVE_OCPP_HEARTBEAT_INTERVAL", defaults.ocpp_heartbeat_interval, 1, 86400
            ),
            ocpp_trust_proxy=_bool(env, "MAEVE_OCPP_TRUST_PROXY", defaults.ocpp_trust_proxy),
            ocpp_ca_cert=env.get("MAEVE_OCPP_CA_CERT") or None,
            ocpp_ca_key=env.get("MAEVE_OCPP_CA_KEY") or None,
            ocpp_call_timeout=_float(env, "MAEVE_OCPP_CALL_TIMEOUT", defaults.ocpp_call_timeout, 0.1, 300),
            ocpp_max_attempts=_int(env, "MAEVE_OCPP_MAX_ATTEMPTS", defaults.ocpp_max_attempts, 1, 100),
            ocpp_retry_seconds=_float(env, "MAEVE_OCPP_RETRY_SECONDS", defaults.ocpp_retry_seconds, 0.01, 3600),
            api_host=env.get("MAEVE_API_HOST") or env.get("MAEVE_HOST") or defaults.api_host,
            ocpi_host=env.get("MAEVE_OCPI_HOST") or env.get("MAEVE_HOST") or defaults.ocpi_host,
            ocpi_allow_private_networks=_bool(
                env, "MAEVE_OCPI_ALLOW_PRIVATE_NETWORKS", defaults.ocpi_allow_private_networks
            ),
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


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
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
