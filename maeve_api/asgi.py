"""The ASGI application gunicorn serves, configured from the environment: the internal API, OCPI and OCPP, by port."""

from maeve_api.app import create_app
from maeve_api.listeners import PortDispatch
from maeve_api.ocpi.app import create_ocpi_app
from maeve_api.ocpp.app import create_ocpp_app
from maeve_api.settings import Settings

_settings = Settings.from_env()

app = PortDispatch(
    {
        _settings.api_port: create_app(_settings),
        _settings.ocpi_port: create_ocpi_app(_settings),
        _settings.ocpp_port: create_ocpp_app(_settings),
    }
)
