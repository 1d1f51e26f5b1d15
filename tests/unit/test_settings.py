"""Settings read from the environment."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from maeve_api.ocpi.registration import version_details
from maeve_api.settings import Settings, SettingsError


def test_defaults_serve_on_9410_with_the_embedded_store():
    """With nothing set the API listens on 9410, OCPI on 9411, and data goes to ./var/maeve.db."""
    settings = Settings.from_env({})
    assert (settings.api_port, settings.ocpi_port) == (9410, 9411)
    assert settings.database_url == "sqlite:///var/maeve.db"


def test_values_are_read_and_typed():
    """Every MAEVE_* variable is read into its typed field."""
    settings = Settings.from_env(
        {
            "MAEVE_DATABASE_URL": "mongodb://db:27017/maeve",
            "MAEVE_HOST": "0.0.0.0",
            "MAEVE_API_PORT": "9500",
            "MAEVE_OCPI_PORT": "9501",
            "MAEVE_WORKERS": "4",
            "MAEVE_MAX_BODY_BYTES": "2048",
            "MAEVE_VALIDATE_RESPONSES": "true",
            "MAEVE_LOG_LEVEL": "WARNING",
        }
    )
    assert settings == Settings(
        database_url="mongodb://db:27017/maeve",
        host="0.0.0.0",
        api_host="0.0.0.0",
        ocpi_host="0.0.0.0",
        api_port=9500,
        ocpi_port=9501,
        workers=4,
        max_body_bytes=2048,
        validate_responses=True,
        log_level="warning",
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAEVE_API_PORT", "http"),
        ("MAEVE_API_PORT", "70000"),
        ("MAEVE_WORKERS", "0"),
        ("MAEVE_VALIDATE_RESPONSES", "maybe"),
        ("MAEVE_LOG_LEVEL", "loud"),
        ("MAEVE_DATABASE_URL", "postgres://db/maeve"),
    ],
)
def test_a_bad_value_fails_fast_naming_the_variable(name, value):
    """A value that cannot be used raises SettingsError naming the variable."""
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_repr_hides_the_database_password():
    """The database password never appears in the settings' repr."""
    settings = Settings(database_url="mongodb://maeve:s3cret@db:27017/maeve")
    assert "s3cret" not in repr(settings)
    assert "mongodb://maeve:***@db:27017/maeve" in repr(settings)


def test_ocpi_values_are_read():
    """The OCPI identity, external URL and default time zone come from their variables."""
    settings = Settings.from_env(
        {
            "MAEVE_OCPI_EXTERNAL_URL": "https://ocpi.example.com",
            "MAEVE_OCPI_COUNTRY_CODE": "NL",
            "MAEVE_OCPI_PARTY_ID": "AB1",
            "MAEVE_OCPI_BUSINESS_NAME": "Example CPO",
            "MAEVE_OCPI_TIME_ZONE": "Europe/Amsterdam",
        }
    )
    assert (settings.ocpi_external_url, settings.ocpi_country_code, settings.ocpi_party_id) == (
        "https://ocpi.example.com",
        "NL",
        "AB1",
    )
    assert (settings.ocpi_business_name, settings.ocpi_time_zone) == ("Example CPO", "Europe/Amsterdam")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAEVE_OCPI_EXTERNAL_URL", "ocpi.example.com"),
        ("MAEVE_OCPI_EXTERNAL_URL", "https://ocpi.example.com/" + "x" * 208),
        ("MAEVE_OCPI_COUNTRY_CODE", "nld"),
        ("MAEVE_OCPI_PARTY_ID", "ab"),
        ("MAEVE_OCPI_BUSINESS_NAME", "x" * 101),
        ("MAEVE_OCPI_TIME_ZONE", "Mars/Olympus"),
    ],
)
def test_a_bad_ocpi_value_fails_fast_naming_the_variable(name, value):
    """An unusable OCPI value raises SettingsError naming the variable."""
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_the_longest_external_url_leaves_every_published_url_within_ocpis_255_characters():
    """At 232 characters, our longest endpoint URL is exactly OCPI's longest URL."""
    settings = Settings.from_env({"MAEVE_OCPI_EXTERNAL_URL": "https://ocpi.example.com/" + "x" * 207})
    details = version_details(settings, "2.2.1")
    assert max(len(endpoint["url"]) for endpoint in details["endpoints"]) == 255


def test_ocpp_defaults_and_values_are_read():
    """The OCPP endpoint listens on 127.0.0.1:9310 by default; its variables are read into typed fields."""
    defaults = Settings.from_env({})
    assert (defaults.ocpp_host, defaults.ocpp_port, defaults.ocpp_heartbeat_interval) == ("127.0.0.1", 9310, 300)
    assert (defaults.ocpp_trust_proxy, defaults.ocpp_ca_cert, defaults.ocpp_ca_key) == (False, None, None)
    settings = Settings.from_env(
        {
            "MAEVE_OCPP_HOST": "0.0.0.0",
            "MAEVE_OCPP_PORT": "9999",
            "MAEVE_OCPP_HEARTBEAT_INTERVAL": "60",
            "MAEVE_OCPP_TRUST_PROXY": "true",
            "MAEVE_OCPP_CA_CERT": "/ca.pem",
            "MAEVE_OCPP_CA_KEY": "/ca.key",
            "MAEVE_OCPP_CALL_TIMEOUT": "2.5",
            "MAEVE_OCPP_MAX_ATTEMPTS": "5",
            "MAEVE_OCPP_RETRY_SECONDS": "1",
        }
    )
    assert (settings.ocpp_host, settings.ocpp_port, settings.ocpp_heartbeat_interval) == ("0.0.0.0", 9999, 60)
    assert (settings.ocpp_trust_proxy, settings.ocpp_ca_cert, settings.ocpp_ca_key) == (True, "/ca.pem", "/ca.key")
    assert (settings.ocpp_call_timeout, settings.ocpp_max_attempts, settings.ocpp_retry_seconds) == (2.5, 5, 1.0)
    assert "/ca.key" not in repr(settings)


@pytest.mark.parametrize(
    ("environment", "name"),
    [
        ({"MAEVE_OCPP_PORT": "0"}, "MAEVE_OCPP_PORT"),
        ({"MAEVE_OCPP_HEARTBEAT_INTERVAL": "x"}, "MAEVE_OCPP_HEARTBEAT_INTERVAL"),
        ({"MAEVE_OCPP_TRUST_PROXY": "maybe"}, "MAEVE_OCPP_TRUST_PROXY"),
        ({"MAEVE_OCPP_CALL_TIMEOUT": "soon"}, "MAEVE_OCPP_CALL_TIMEOUT"),
        ({"MAEVE_OCPP_CA_CERT": "/ca.pem"}, "MAEVE_OCPP_CA_KEY"),
    ],
)
def test_a_bad_ocpp_value_fails_fast_naming_the_variable(environment, name):
    """An unusable OCPP value raises SettingsError naming the variable."""
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(environment)


def test_each_listener_binds_its_own_host():
    """MAEVE_API_HOST and MAEVE_OCPI_HOST bind the listeners apart; MAEVE_HOST, as before, is the default of both."""
    assert (Settings.from_env({}).api_host, Settings.from_env({}).ocpi_host) == ("127.0.0.1", "127.0.0.1")
    apart = Settings.from_env({"MAEVE_API_HOST": "10.0.0.5", "MAEVE_OCPI_HOST": "0.0.0.0"})
    assert (apart.api_host, apart.ocpi_host) == ("10.0.0.5", "0.0.0.0")
    legacy = Settings.from_env({"MAEVE_HOST": "10.0.0.5", "MAEVE_OCPI_HOST": "0.0.0.0"})
    assert (legacy.api_host, legacy.ocpi_host) == ("10.0.0.5", "0.0.0.0")


def test_gunicorn_binds_each_listener_to_its_host(tmp_path):
    """gunicorn's bind list puts the internal API, OCPI and OCPP on their own hosts."""
    code = "from maeve_api import gunicorn_conf as c; print(c.bind)"
    env = {
        **os.environ,
        "MAEVE_DATABASE_URL": f"sqlite:///{tmp_path}/maeve.db",
        "MAEVE_API_HOST": "127.0.0.2",
        "MAEVE_OCPI_HOST": "0.0.0.0",
        "MAEVE_OCPI_PORT": "9511",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert shown.strip() == "['127.0.0.2:9410', '0.0.0.0:9511', '127.0.0.1:9310']"


def test_private_networks_are_refused_unless_allowed():
    """Partner calls go only to public addresses unless MAEVE_OCPI_ALLOW_PRIVATE_NETWORKS is true."""
    assert Settings.from_env({}).ocpi_allow_private_networks is False
    assert Settings.from_env({"MAEVE_OCPI_ALLOW_PRIVATE_NETWORKS": "true"}).ocpi_allow_private_networks is True
    with pytest.raises(SettingsError, match="MAEVE_OCPI_ALLOW_PRIVATE_NETWORKS"):
        Settings.from_env({"MAEVE_OCPI_ALLOW_PRIVATE_NETWORKS": "sometimes"})


def test_a_partner_call_must_end_before_its_push_lease():
    """The call deadline must be shorter than the lease, or a push could outlive its claim."""
    with pytest.raises(SettingsError, match="deadline"):
        Settings(push_lease_seconds=10.0, ocpi_call_deadline_seconds=10.0)


def test_the_advertised_ocpi_url_follows_the_ocpi_port():
    """Without MAEVE_OCPI_EXTERNAL_URL, partners are given the OCPI port actually configured."""
    assert Settings.from_env({"MAEVE_OCPI_PORT": "29411"}).ocpi_external_url == "http://localhost:29411"
    given = {"MAEVE_OCPI_PORT": "29411", "MAEVE_OCPI_EXTERNAL_URL": "https://ocpi.example.com"}
    assert Settings.from_env(given).ocpi_external_url == "https://ocpi.example.com"


def test_equal_ports_are_refused():
    """The API and OCPI listeners cannot share a port."""
    with pytest.raises(SettingsError, match="MAEVE_API_PORT and MAEVE_OCPI_PORT must differ"):
        Settings.from_env({"MAEVE_API_PORT": "9411"})


def test_a_sqlite_file_in_a_missing_directory_is_refused(tmp_path):
    """check_store refuses a SQLite path whose directory does not exist, naming the variable, and creates nothing."""
    settings = Settings.from_env({"MAEVE_DATABASE_URL": f"sqlite:///{tmp_path}/missing/x.db"})
    with pytest.raises(SettingsError, match="MAEVE_DATABASE_URL"):
        settings.check_store()
    assert not (tmp_path / "missing").exists()
    Settings.from_env({"MAEVE_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}).check_store()
