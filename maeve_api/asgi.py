"""The ASGI application gunicorn serves, configured from the environment."""

from maeve_api.app import create_app
from maeve_api.settings import Settings

app = create_app(Settings.from_env())
