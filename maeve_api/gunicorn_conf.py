"""gunicorn configuration, from the same settings the app reads."""

from maeve_api.settings import Settings

_settings = Settings.from_env()

bind = [f"{_settings.host}:{_settings.api_port}"]
workers = _settings.workers
worker_class = "uvicorn_worker.UvicornWorker"
# Storage is opened by each worker's lifespan, after the fork.
preload_app = False
timeout = 30
graceful_timeout = 20
keepalive = 5
loglevel = _settings.log_level
accesslog = None
control_socket_disable = True
