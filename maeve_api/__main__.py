"""The ``maeve-api`` command: serve the internal API and OCPI with gunicorn, or check the configuration."""

from __future__ import annotations

import argparse
import json
import sys

from maeve_api.settings import Settings, SettingsError
from maeve_api.storage import SchemaTooNew, check_schema_version

#: The gunicorn command line ``serve`` runs; ``make run`` and the image run the same.
GUNICORN_ARGS = ["-c", "python:maeve_api.gunicorn_conf", "maeve_api.asgi:app"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maeve-api",
        description="The MaEVe CSMS internal API and OCPI listener, configured by the MAEVE_* environment variables.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="serve both listeners with gunicorn (the default)")
    commands.add_parser(
        "check-config",
        help="validate the environment and print what would be served, without starting anything",
    )
    return parser


def check_config() -> int:
    """Print the configuration as JSON and return 0, or say on stderr what is wrong (a bad variable, a store written
    by a newer release) and return 2."""
    try:
        settings = Settings.from_env()
        settings.check_store()
        check_schema_version(settings.database_url)
    except (SettingsError, SchemaTooNew) as exc:
        print(f"maeve-api: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(settings.summary(), indent=2))
    return 0


def serve() -> None:
    """Run gunicorn with the project's configuration; it reads and checks the settings itself."""
    from gunicorn.app.wsgiapp import run

    sys.argv = ["maeve-api", *GUNICORN_ARGS]
    run()


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command == "check-config":
        return check_config()
    serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
