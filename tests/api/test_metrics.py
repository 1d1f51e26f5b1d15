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
