"""The ASGI application gunicorn serves, configured from the environment: the internal API, OCPI and OCPP, by port.

The three apps share one storage per worker (see ``maeve_api.web.listeners.create_listeners``).
"""

from maeve_api.settings import Settings
from maeve_api.web.listeners import create_listeners

app = create_listeners(Settings.from_env())
