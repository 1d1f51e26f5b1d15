"""Settings read from the environment."""

from __future__ import annotations

import pytest

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
