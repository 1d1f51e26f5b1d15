"""The served documents and Swagger UI: tags per resource, examples that pass, the package version."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest
from connexion.exceptions import InvalidSpecification

from maeve_api.documents import OCPI_SPEC, SPEC_DIR, load_spec
from maeve_api.settings import Settings
from maeve_api.web.app import create_app
from maeve_api.web.asyncapp import App

ROOT = Path(__file__).resolve().parents[2]
METHODS = ("get", "put", "post", "delete", "patch")


def operations(spec):
    for template, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield template, item, method, operation


@pytest.mark.parametrize("document", ["openapi.yaml", OCPI_SPEC])
def test_every_operation_sits_under_a_declared_tag(document):
    """Swagger UI groups operations by resource: each has one tag, declared at the top of its document."""
    spec = load_spec(document)
    declared = {tag["name"] for tag in spec["tags"]}
    for _template, _item, _method, operation in operations(spec):
        assert len(operation.get("tags", [])) == 1 and operation["tags"][0] in declared, operation["operationId"]


def test_the_document_carries_the_package_version(client):
    """info.version is the installed package's version, written only in setup.cfg."""
    assert client.get("/openapi.json").json()["info"]["version"] == version("maeve-api") != "0.0.0"


def test_the_reference_document_path_is_served(client):
    """The document is also served at the reference's /api/openapi.json."""
    reference = client.get("http://testserver/api/openapi.json")
    assert reference.status_code == 200
    assert reference.headers["content-type"] == "application/json"
    assert reference.json()["paths"].keys() == client.get("/openapi.json").json()["paths"].keys()


def _path(template, item, operation, spec):
    path = template
    for parameter in [*item.get("parameters", ()), *operation.get("parameters", ())]:
        if "$ref" in parameter:
            parameter = spec["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
        if parameter["in"] == "path":
            example = parameter.get("example", parameter.get("schema", {}).get("example"))
            assert example is not None, (operation["operationId"], parameter["name"])
            path = path.replace("{" + parameter["name"] + "}", str(example).replace("/", "%2F"))
    return path


def test_every_example_is_accepted(client):
    """Each operation called with its documented examples, in the document's order, succeeds."""
    spec = load_spec()
    for template, item, method, operation in operations(spec):
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        if operation.get("requestBody"):
            assert "example" in body, operation["operationId"]
        path = _path(template, item, operation, spec)
        kwargs = {"json": body["example"]} if "example" in body else {}
        response = client.request(method.upper(), path, **kwargs)
        assert 200 <= response.status_code < 300, (operation["operationId"], response.text)


def test_the_readme_names_each_ui_and_the_probes_by_full_url():
    """The README gives the address of the Swagger UI, of both documents and the probes' exact paths."""
    readme = (ROOT / "README.md").read_text()
    addresses = ("http://127.0.0.1:9410/api/v0/ui/", "http://127.0.0.1:9410/ocpi/openapi.json", "http://127.0.0.1:9410/health")
    for address in addresses:
        assert address in readme


def test_the_readme_loads_every_document_from_the_internal_listener():
    """The OCPI listener serves no document: every document URL in the README, the schemathesis commands'
    included, is on the internal listener."""
    readme = (ROOT / "README.md").read_text()
    ports = re.findall(r"http://127\.0\.0\.1:(\d+)/[\w/]*openapi\.json", readme)
    assert ports and set(ports) == {"9410"}


def test_a_document_is_still_checked_against_the_openapi_schema_after_a_valid_one_was_built():
    """Each distinct document is checked once per process: one differing from a document that passed is
    refused, every time, as Connexion refuses it."""
    create_app(Settings(database_url="sqlite:///:memory:"))
    broken = load_spec()
    broken["paths"]["/cs/{csId}"]["post"]["responses"] = {"x": {"description": "not a status"}}
    for _ in range(2):
        with pytest.raises(InvalidSpecification):
            App(__name__, specification_dir=SPEC_DIR).add_api(broken)
