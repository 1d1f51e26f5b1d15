"""/metrics: Prometheus counters and histograms of requests and store calls."""

from __future__ import annotations

import re


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition, 0 if it is absent."""
    wanted = {f'{key}="{value}"' for key, value in labels.items()}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and wanted <= set(match[1].split(",")):
            return float(match[2])
    return 0.0


def test_requests_and_store_calls_are_counted(client):
    """Each answered request counts under its operationId and status; each store call is timed."""
    before = client.get("http://testserver/metrics").text
    client.get("/cs/nobody/auth")
    client.get("/cs/nobody/auth")
    response = client.get("http://testserver/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    requests = "maeve_http_requests_total"
    labels = {"listener": "api", "operation": "lookupChargeStationAuth", "method": "GET", "status": "404"}
    assert sample(after, requests, **labels) - sample(before, requests, **labels) == 2
    store_calls = "maeve_store_operation_duration_seconds_count"
    store = {"operation": "charge_stations.find_auth"}
    assert sample(after, store_calls, **store) - sample(before, store_calls, **store) == 2
    latency = "maeve_http_request_duration_seconds_bucket"
    assert sample(after, latency, operation="lookupChargeStationAuth", le="+Inf") > 0


def test_a_refused_body_is_counted_under_its_operation(client):
    """A 413, refused before routing, is counted under the operation its method and path name."""
    labels = {"listener": "api", "operation": "reconfigureChargeStation", "method": "POST", "status": "413"}
    before = sample(client.get("http://testserver/metrics").text, "maeve_http_requests_total", **labels)
    client.post("/cs/cs001/reconfigure", json={"a": "x" * 70_000})
    after = sample(client.get("http://testserver/metrics").text, "maeve_http_requests_total", **labels)
    assert after - before == 1


def test_lookups_of_unknown_ids_are_not_store_errors(client):
    """A 404 lookup is an ordinary answer: it is timed but does not count as a store error."""
    errors = {"operation": "tokens.get", "error": "NotFound"}
    calls = {"operation": "tokens.get"}
    before = client.get("http://testserver/metrics").text
    assert client.get("/token/nope").status_code == 404
    after = client.get("http://testserver/metrics").text
    assert sample(after, "maeve_store_operation_errors_total", **errors) == 0
    count = "maeve_store_operation_duration_seconds_count"
    assert sample(after, count, **calls) - sample(before, count, **calls) == 1
