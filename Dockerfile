# maeve-api: gunicorn with uvicorn workers, as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MAEVE_HOST=0.0.0.0 \
    MAEVE_OCPP_HOST=0.0.0.0 \
    MAEVE_DATABASE_URL=sqlite:////var/lib/maeve/maeve.db

WORKDIR /app
COPY pyproject.toml setup.cfg README.md ./
COPY maeve_api maeve_api
COPY spec spec
COPY handlers handlers
COPY storage storage
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/maeve --create-home maeve

USER maeve
EXPOSE 9410 9411 9310
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9410/ready', timeout=2)"]
# gunicorn turns SIGTERM into a graceful stop: in-flight requests get graceful_timeout to finish.
STOPSIGNAL SIGTERM
CMD ["gunicorn", "-c", "python:maeve_api.gunicorn_conf", "maeve_api.asgi:app"]
