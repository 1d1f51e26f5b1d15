"""Locations reach every partner with a locations receiver, from the outbox, despite outages and restarts."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta

import pytest

from maeve_api.ocpi.publisher import Publisher, backoff
from maeve_api.settings import Settings
from tests.api.conftest import assert_empty
from tests.api.test_locations import LOCATION
from tests.api.test_metrics import sample
from tests.conftest import NO_SERVER_CLOCK
from tests.ocpi.conftest import wait_for


def _registered(make_instance, make_partner, engine="sqlite", **partner_options):
    partner = make_partner(**partner_options)
    cpo = make_instance(engine=engine)
    assert_empty(cpo.api.post("/register", json={"token": partner.token_a, "url": partner.versions_url}), 201)
    return cpo, partner


def test_a_registered_location_is_put_to_the_partner(make_instance, make_partner):
    """registerLocation answers 201 and the full OCPI Location is PUT under our country and party, once."""
    cpo, partner = _registered(make_instance, make_partner)
    assert_empty(cpo.api.post("/location/loc1", json=LOCATION), 201)
    push = wait_for(partner.pushes)[0]
    assert push.path == "/ocpi/emsp/locations/GB/CPO/loc1"
    assert push.headers["Authorization"] == f"Token {base64.b64encode(partner.our_token_c.encode()).decode()}"
    assert (push.headers["OCPI-to-country-code"], push.headers["OCPI-to-party-id"]) == ("NL", "EMS")
    assert (push.headers["OCPI-from-country-code"], push.headers["OCPI-from-party-id"]) == ("GB", "CPO")
    location = push.body
    assert (location["id"], location["publish"], location["time_zone"]) == ("loc1", True, "UTC")
    assert (location["country_code"], location["party_id"]) == ("GB", "CPO")
    assert [evse["status"] for evse in location["evses"]] == ["UNKNOWN", "UNKNOWN"]
    assert location["evses"][0]["connectors"][0]["standard"] == "IEC_62196_T2"
    last_push = wait_for(lambda: cpo.store.parties.get("NL*EMS").get("last_push"))
    assert (last_push["location_id"], last_push["ok"]) == ("loc1", True)
    wait_for(lambda: cpo.store.pushes.all() == [])
    assert len(partner.pushes()) == 1


def test_a_location_time_zone_is_published(make_instance, make_partner):
    """A time_zone given to registerLocation is stored and published instead of the configured one."""
    cpo, partner = _registered(make_instance, make_partner)
    assert_empty(cpo.api.post("/location/loc1", json={**LOCATION, "time_zone": "Europe/London"}), 201)
    assert wait_for(partner.pushes)[0].body["time_zone"] == "Europe/London"


def test_an_unknown_time_zone_is_refused(make_instance):
    """A time_zone that is not an IANA zone is a 400 naming the field, and nothing is stored."""
    cpo = make_instance()
    response = cpo.api.post("/location/loc1", json={**LOCATION, "time_zone": "Mars/Olympus"})
    assert response.status_code == 400 and "time_zone" in response.json()["error"]
    assert cpo.store.locations.find("loc1") is None


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
@pytest.mark.parametrize("engine", ["sqlite", "nx27017", "mongoeco"])
def test_a_push_to_a_partner_that_is_down_arrives_after_a_restart(make_instance, make_partner, engine):
    """The API answers at once; the failed push is recorded, survives a restart and is delivered once back."""
    cpo, partner = _registered(make_instance, make_partner, engine)
    partner.stop()
    assert_empty(cpo.api.post("/location/loc1", json=LOCATION), 201)
    failed = wait_for(lambda: cpo.store.parties.get("NL*EMS").get("last_push"))
    assert failed["ok"] is False, failed
    assert failed["error"].startswith("PUT location: "), failed
    cpo.stop_ocpi()
    [entry] = cpo.store.pushes.all()
    assert entry["attempts"] >= 1 and entry["last_error"].startswith("PUT location: "), entry
    partner.start()
    cpo.restart_ocpi()
    wait_for(partner.pushes)
    wait_for(lambda: cpo.store.pushes.all() == [])
    assert cpo.store.parties.get("NL*EMS")["last_push"]["ok"] is True
    assert len(partner.pushes()) == 1


def test_a_partner_refusing_the_push_gets_it_again(make_instance, make_partner):
    """A non-2xx answer is retried with back-off until the partner accepts it."""
    cpo, partner = _registered(make_instance, make_partner, put_status=503)
    assert_empty(cpo.api.post("/location/loc1", json=LOCATION), 201)
    wait_for(lambda: len(partner.pushes()) >= 2)
    assert "HTTP 503" in cpo.store.parties.get("NL*EMS")["last_push"]["error"]
    partner.put_status = 200
    wait_for(lambda: cpo.store.pushes.all() == [])
    assert cpo.store.parties.get("NL*EMS")["last_push"]["ok"] is True


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
@pytest.mark.parametrize("engine", ["sqlite", "nx27017", "mongoeco"])
def test_two_workers_never_send_one_push_twice(make_instance, make_partner, engine):
    """Two publishers on one store, racing over a slow partner, deliver every location exactly once."""
    cpo, partner = _registered(make_instance, make_partner, engine, slow_seconds=0.05)
    cpo.stop_ocpi()
    for index in range(6):
        assert_empty(cpo.api.post(f"/location/loc{index}", json=LOCATION), 201)
    workers = [Publisher(cpo.open_store(), cpo.settings) for _ in range(2)]
    threads = [threading.Thread(target=worker.deliver_due) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    for worker in workers:
        worker.stop()
        worker.storage.close()
    assert sorted(push.path.rsplit("/", 1)[1] for push in partner.pushes()) == [f"loc{i}" for i in range(6)]
    assert cpo.store.pushes.all() == []


def test_backoff_doubles_up_to_its_bound():
    """Retries wait the initial delay, then twice as long each time, never more than the maximum."""
    settings = Settings(push_backoff_seconds=2.0, push_backoff_max_seconds=60.0)
    delays = [backoff(settings, attempts) for attempts in (0, 1, 2, 5, 100)]
    assert delays == [timedelta(seconds=s) for s in (2, 4, 8, 60, 60)]


def test_metrics_show_the_outbox_and_each_partys_push_results(make_instance, make_partner):
    """/metrics counts failed and delivered pushes per party and shows what waits in the outbox."""
    cpo, partner = _registered(make_instance, make_partner)
    pushes = "maeve_ocpi_pushes_total"
    before = cpo.api.get("http://testserver/metrics").text
    partner.stop()
    assert_empty(cpo.api.post("/location/loc1", json=LOCATION), 201)
    wait_for(lambda: cpo.store.parties.get("NL*EMS").get("last_push"))
    waiting = cpo.api.get("http://testserver/metrics").text
    assert sample(waiting, "maeve_ocpi_outbox_entries", party="NL*EMS") == 1
    failed = sample(waiting, pushes, party="NL*EMS", result="failed") - sample(
        before, pushes, party="NL*EMS", result="failed"
    )
    assert failed >= 1
    partner.start()
    wait_for(lambda: cpo.store.pushes.all() == [])
    delivered = cpo.api.get("http://testserver/metrics").text
    assert sample(delivered, "maeve_ocpi_outbox_entries", party="NL*EMS") == 0
    assert (
        sample(delivered, pushes, party="NL*EMS", result="ok") - sample(before, pushes, party="NL*EMS", result="ok")
        == 1
    )
