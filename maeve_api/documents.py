"""The OpenAPI documents shipped with the package (spec/), parsed once per process."""

from __future__ import annotations

import copy
import functools
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

# spec/ installs as maeve_api.spec (setup.cfg package_dir).
SPEC_DIR = Path(str(files("maeve_api.spec")))
API_SPEC = "openapi.yaml"
OCPI_SPEC = "ocpi.yaml"

#: libyaml's parser when PyYAML was built with it (the wheels are): the pure-Python one took most of an
#: app's build time, in every worker and every app a test builds.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_spec(name: str = API_SPEC) -> dict[str, Any]:
    """The parsed OpenAPI document shipped with the package, a copy of its own for the caller to change.

    The internal API's ``info.version`` is the package's version, written once in setup.cfg; the OCPI
    document's is the OCPI version it implements.
    """
    loaded: dict[str, Any] = copy.deepcopy(_parsed_spec(name))
    if name == API_SPEC:
        loaded["info"]["version"] = version("maeve-api")
    return loaded


@functools.cache
def _parsed_spec(name: str) -> dict[str, Any]:
    """The document as parsed, once per process; callers get a deep copy, since Connexion changes it."""
    with open(SPEC_DIR / name, encoding="utf-8") as spec:
        parsed: dict[str, Any] = yaml.load(spec, Loader=_YAML_LOADER)
    return parsed
