"""The OpenAPI documents shipped with the package (spec/), parsed once per process."""

from __future__ import annotations

import copy
import functools
import json
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


def _with_version(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {**spec, "info": {**spec["info"], "version": version("maeve-api")}} if name == API_SPEC else spec


def load_spec(name: str = API_SPEC) -> dict[str, Any]:
    """The parsed OpenAPI document shipped with the package, a copy of its own for the caller to change.

    The internal API's ``info.version`` is the package's version, written once in setup.cfg; the OCPI
    document's is the OCPI version it implements.
    """
    return copy.deepcopy(_with_version(name, _parsed_spec(name)))


@functools.cache
def document_json(name: str, server_url: str | None = None) -> bytes:
    """The document (as ``load_spec`` gives it) in JSON, as served; made once per process and server URL. With
    ``server_url``, its one server is that URL followed by the document's own server path."""
    spec = _with_version(name, _parsed_spec(name))
    if server_url is not None:
        spec = {**spec, "servers": [{"url": f"{server_url.rstrip('/')}{spec['servers'][0]['url']}"}]}
    return json.dumps(spec, ensure_ascii=False, default=str).encode()


@functools.cache
def _parsed_spec(name: str) -> dict[str, Any]:
    """The document as parsed, once per process, never changed: ``load_spec`` hands out deep copies (Connexion
    changes what it is given), ``document_json`` only reads it."""
    with open(SPEC_DIR / name, encoding="utf-8") as spec:
        parsed: dict[str, Any] = yaml.load(spec, Loader=_YAML_LOADER)
    return parsed
