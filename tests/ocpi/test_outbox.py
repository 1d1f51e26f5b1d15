"""The outbox against partners that refuse, fail or stall: refusals are final, failures retried for a day, an older
version never lands after a newer one, and the operator reads back what happened."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from prometheus_client import generate_latest

from maeve_api.domain.schemas import LOCATION as LOCATION_SCHEMA
from maeve_api.domain.schemas import utc_now
from maeve_api.ocpi.locations import publish_location
from maeve_api.ocpi.publisher import Publisher
from maeve_api.ocpi.registration import token_hash
from maeve_api.settings import Settings
from maeve_api.storage import _documents as docs
from maeve_api.web.app import create_app
from tests.api.conftest import assert_empty
from tests.api.test_locations import LOCATION
from tests.api.test_metrics import sample
from tests.conftest import MONGODB_URI_VARIABLE, NO_SERVER_CLOCK
from tests.ocpi.conftest import FAST, wait_for
from tests.ocpi.hostile import Reply, ocpi_answer, trickle

KEY = "NL*EMS"


def _party(receiver: str, key: str = KEY) -> dict:
    country, party_id = key.split("*")
    return {
        "key": key,
        "roles": [{"role": "EMSP", "country_code": country, "party_id": party_id, "business_details": {"name": "e"}}],
        "version": "2.2.1",
        "versions_url": f"{receiver}/versions",
        "endpoints": [{"identifier": "locations", "role": "RECEIVER", "url": f"{receiver}/locations"}],
        "outbound_token": "token-c-of-the-partner",
        "token_encoding": "base64",
        "inbound_token_hash": token_hash("token-the-partner-calls-us-with"),
        "registered_at": utc_now(),
    }


@pytest.fixture
def settings(tmp_path) -> Settings:
    return replace(Settings(database_url=f"sqlite:///{tmp_path}/maeve.db"), **FAST)


def _publish(store, name: str, location_id: str = "loc1") -> None:
    publish_location(store, LOCATION_SCHEMA.load({**LOCATION, "name": name, "id": location_id}))


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
@pytest.mark.parametrize("engine", ["sqlite", "nx27017", "mongoeco"])
def test_a_stale_push_never_overwrites_a_newer_one(make_storage, make_hostile_server, settings, engine):
    """Worker A sends version 1 to a partner that applies a PUT only once its answer is out, and answers slowly;
    version 2 is registered meanwhile. A's call ends at its deadline, before its lease, so worker B sends
    version 2 only once A is done with version 1: the partner ends with version 2."""
    applied: list[str] = []
    first = threading.Event()

    def answer(request):
        name = json.loads(request.body)["name"]
        if not first.is_set():
            first.set()
            return Reply(200, pieces=trickle(25), pause=0.1, length=25, on_sent=lambda: applied.append(name))
        return Reply(200, body=ocpi_answer(), on_sent=lambda: applied.append(name))

    partner = make_hostile_server(answer)
    store = make_storage(engine)
    store.parties.create(_party(partner.url))
    slow = replace(settings, push_lease_seconds=1.0, ocpi_call_deadline_seconds=0.6, ocpi_read_timeout=0.5)
    worker_a, worker_b = Publisher(store, slow), Publisher(store, slow)
    _publish(store, "version 1")
    sending = threading.Thread(target=worker_a.deliver_due)
    sending.start()
    assert first.wait(5)
    _publish(store, "version 2")
    deadline = time.monotonic() + 10
    while store.pushes.all() and time.monotonic() < deadline:
        worker_b.deliver_due()
        time.sleep(0.05)
    sending.join(10)
    assert partner.wait_idle()  # the slow answer is out, or was hung up on
    assert store.pushes.all() == []
    assert applied and applied[-1] == "version 2", applied
    assert partner.received[-1].body and json.loads(partner.received[-1].body)["name"] == "version 2"


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
@pytest.mark.parametrize("engine", ["mongomock", "nx27017", "mongoeco", "mongodb"])
def test_workers_whose_clocks_are_minutes_off_still_send_a_push_once(
    make_storage, make_hostile_server, settings, engine, monkeypatch
):
    """Leases are on MongoDB's clock, not the workers': while a worker that died holds a push, one whose clock runs
    5 minutes ahead sends nothing, and once the lease ends one whose clock runs 5 minutes behind sends it at once.
    (SQLite serves one host, whose clock all its workers share.)"""
    if engine == "mongodb" and not os.environ.get(MONGODB_URI_VARIABLE):
        pytest.skip(f"{MONGODB_URI_VARIABLE} is not set")
    partner = make_hostile_server(lambda _request: Reply(200, body=ocpi_answer()))
    store = make_storage(engine)
    store.parties.create(_party(partner.url))
    # Long enough that the first claim below cannot outlive it on a busy machine; the test waits it out once.
    leased = replace(settings, push_lease_seconds=3.0, ocpi_call_deadline_seconds=2.0)
    _publish(store, "version 1")
    died = Publisher(store, leased)
    monkeypatch.setattr(died, "_deliver", lambda *_args: None)  # claims, then never sends nor releases
    assert died.deliver_due() == 1
    real_now = docs.now
    for skew, claims in ((timedelta(minutes=5), 0), (-timedelta(minutes=5), 1)):
        # The worker's own clock and the store's Python clock both skewed, as on another host.
        monkeypatch.setattr(docs, "now", lambda skew=skew: real_now() + skew)
        worker = Publisher(store, leased, clock=lambda skew=skew: utc_now() + skew)
        if claims:
            time.sleep(leased.push_lease_seconds + 0.1)
        assert worker.deliver_due() == claims, skew
    assert len(partner.received) == 1
    assert store.pushes.all() == []
    assert [result["state"] for result in store.pushes.results("loc1")] == ["delivered"]


def _failures(party: str, reason: str) -> float:
    return sample(generate_latest().decode(), "maeve_ocpi_push_final_failures_total", party=party, reason=reason)


@pytest.mark.engine_gap(**NO_SERVER_CLOCK)
@pytest.mark.parametrize("engine", ["sqlite", "mongomock", "mongoeco"])
def test_a_4xx_is_final_for_that_revision_and_recorded(make_storage, make_hostile_server, settings, engine):
    """A 422 with an OCPI 2001 is tried once: the entry leaves the outbox, the partner's status, code and message
    (shortened) are recorded, and the final failure is counted; a new revision is pushed again."""
    partner = make_hostile_server(
        lambda _request: Reply(422, body=ocpi_answer(None, 2001, "latitude: too long " + "x" * 500))
    )
    store = make_storage(engine)
    store.parties.create(_party(partner.url))
    before = _failures(KEY, "refused")
    _publish(store, "version 1")
    publisher = Publisher(store, settings)
    publisher.deliver_due()
    time.sleep(0.3)
    publisher.deliver_due()
    assert len(partner.received) == 1
    assert store.pushes.all() == []
    [result] = store.pushes.results("loc1")
    assert (result["state"], result["http_status"], result["status_code"]) == ("failed", 422, 2001)
    assert result["status_message"].startswith("latitude: too long") and len(result["status_message"]) <= 200
    assert _failures(KEY, "refused") - before == 1
    last_push = store.parties.get(KEY)["last_push"]
    assert (last_push["ok"], last_push["http_status"]) == (False, 422)
    _publish(store, "version 2")
    publisher.deliver_due()
    assert len(partner.received) == 2


@pytest.mark.parametrize("status", [500, 503, 408, 429])
def test_5xx_408_and_429_are_retried(make_storage, make_hostile_server, settings, status):
    """A server error, a request timeout or too many requests keeps the push queued, with its attempt counted."""
    partner = make_hostile_server(lambda _request: Reply(status, body=ocpi_answer(None, 3000, "busy")))
    store = make_storage("sqlite")
    store.parties.create(_party(partner.url))
    _publish(store, "version 1")
    publisher = Publisher(store, settings)
    publisher.deliver_due()
    [entry] = store.pushes.all()
    assert entry["attempts"] == 1
    [result] = store.pushes.results("loc1")
    assert (result["state"], result["http_status"]) == ("retrying", status)


def test_a_push_failing_for_a_day_is_given_up(make_storage, make_hostile_server, settings, monkeypatch):
    """Retries with back-off stop 24 hours after the first failure of a revision; the give-up is counted."""
    partner = make_hostile_server(lambda _request: Reply(503, body=b"down"))
    store = make_storage("sqlite")
    store.parties.create(_party(partner.url))
    _publish(store, "version 1")
    start = utc_now()
    now = [start]
    # The day passes on the host's clock, which the worker and the SQLite store both read.
    monkeypatch.setattr(docs, "now", lambda: now[0])
    publisher = Publisher(store, replace(settings, push_backoff_max_seconds=600.0), clock=lambda: now[0])
    before = _failures(KEY, "expired")
    publisher.deliver_due()
    for hours in (1, 12, 23):
        now[0] = start + timedelta(hours=hours)
        publisher.deliver_due()
        assert store.pushes.all() != [], hours
    now[0] = start + timedelta(hours=25)
    publisher.deliver_due()
    assert store.pushes.all() == []
    [result] = store.pushes.results("loc1")
    assert (result["state"], result["http_status"]) == ("failed", 503)
    assert _failures(KEY, "expired") - before == 1
    assert len(partner.received) == 5


def test_a_partner_url_on_loopback_is_never_pushed_to(make_storage, make_hostile_server, tmp_path):
    """With private networks not allowed, a registered party whose receiver is on loopback gets no call, and the
    push is given up as refused."""
    partner = make_hostile_server(lambda _request: Reply(200, body=ocpi_answer()))
    store = make_storage("sqlite")
    store.parties.create(_party(partner.url))
    strict = replace(
        Settings(database_url=f"sqlite:///{tmp_path}/x.db"), **{**FAST, "ocpi_allow_private_networks": False}
    )
    _publish(store, "version 1")
    Publisher(store, strict).deliver_due()
    assert partner.received == []
    [result] = store.pushes.results("loc1")
    assert result["state"] == "failed" and result["error"].startswith("PUT location: ")


def test_the_operator_reads_back_locations_and_parties(make_instance, make_partner):
    """lookupLocation shows each party's publication state; listParties shows parties and registrations, pages
    like listTokens and never shows a token or a token's hash."""
    partner = make_partner()
    cpo = make_instance()
    assert_empty(cpo.api.post("/register", json={"token": partner.token_a, "url": partner.versions_url}), 201)
    assert_empty(cpo.api.post("/register", json={"token": "token-a-waiting"}), 201)
    partner.stop()
    assert_empty(cpo.api.post("/location/loc1", json=LOCATION), 201)
    wait_for(lambda: cpo.store.pushes.results("loc1"))
    pending = cpo.api.get("/location/loc1").json()["publications"]
    assert [(p["party"], p["state"]) for p in pending] == [(KEY, "pending")]
    assert pending[0]["attempts"] >= 1 and pending[0]["error"].startswith("PUT location: ")
    partner.start()
    wait_for(lambda: cpo.store.pushes.all() == [])
    body = cpo.api.get("/location/loc1").json()
    [delivered] = body["publications"]
    assert (delivered["party"], delivered["state"]) == (KEY, "delivered") and delivered["delivered_at"]
    assert body["location"]["id"] == "loc1"

    listed = cpo.api.get("/party")
    assert listed.status_code == 200
    party, registration = listed.json()
    assert (party["kind"], party["key"], party["status"], party["version"]) == ("party", KEY, "REGISTERED", "2.2.1")
    assert party["roles"] == [{"role": "EMSP", "country_code": "NL", "party_id": "EMS", "business_name": "Strict eMSP"}]
    assert (party["last_push"]["location_id"], party["last_push"]["ok"]) == ("loc1", True)
    assert registration == {"kind": "registration", "status": "PENDING"}
    assert cpo.api.get("/party", params={"offset": 1, "limit": 1}).json() == [registration]
    assert cpo.api.get("/party", params={"offset": 2}).json() == []
    stored = cpo.store.parties.get(KEY)
    for secret in (partner.token_a, "token-a-waiting", stored["outbound_token"], partner.their_token):
        assert secret not in listed.text
        assert token_hash(secret) not in listed.text
    assert stored["inbound_token_hash"] not in listed.text


def test_a_metrics_scrape_counts_the_outbox_in_the_store(make_storage, settings, monkeypatch):
    """/metrics shows each party's waiting pushes from a count in the store, never by loading the outbox."""
    store = make_storage("sqlite")
    for location_id in ("a", "b"):
        store.pushes.enqueue(KEY, location_id)

    def loading_everything():
        raise AssertionError("the scrape loaded the whole outbox")

    monkeypatch.setattr(store.pushes, "all", loading_everything)
    with create_app(settings, storage_factory=lambda: store).test_client() as client:
        text = client.get("/metrics").text
    assert sample(text, "maeve_ocpi_outbox_entries", party=KEY) == 2
