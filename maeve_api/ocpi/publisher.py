"""Delivery of queued location pushes, in a background thread of each worker.

Workers share the outbox in the store: each entry is claimed atomically with a lease, so only one worker
sends a given push at a time, and a push is sent only while its claim is the latest revision and its
lease outlasts the call's deadline, so an older revision never arrives after a newer one. A push the
partner refuses (4xx other than 408 and 429, or an OCPI 2xxx status) is given up for that revision; one
that fails otherwise is retried with an exponential back-off capped at ``push_backoff_max_seconds`` for at
most ``push_give_up_seconds``. A push still queued when a worker stops is sent after the next start.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from maeve_api.domain.errors import PartnerFailed
from maeve_api.domain.schemas import utc_now
from maeve_api.ocpi.client import AddressRefused, PartnerAnswered, PartnerClient
from maeve_api.ocpi.locations import ocpi_location
from maeve_api.ocpi.registration import endpoint
from maeve_api.settings import Settings
from maeve_api.storage import Storage, StorageError
from maeve_api.web.metrics import PUSH_FINAL_FAILURES, PUSHES

log = logging.getLogger(__name__)

STEP = "PUT location"
#: Time kept between the end of a push's deadline and the end of its lease (at most a tenth of the lease).
LEASE_MARGIN_SECONDS = 1.0


def backoff(settings: Settings, attempts: int) -> timedelta:
    """The delay before the next try of a push that has failed ``attempts`` times before this failure."""
    seconds = settings.push_backoff_seconds * 2 ** min(attempts, 32)
    return timedelta(seconds=min(seconds, settings.push_backoff_max_seconds))


class Publisher:
    """Claims due pushes from the outbox and PUTs the location to the partner, until stopped."""

    def __init__(
        self,
        storage: Storage,
        settings: Settings,
        client: PartnerClient | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.storage = storage
        self.settings = settings
        self.client = client or PartnerClient.for_settings(settings)
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Deliver in a daemon thread, looking for due pushes every ``push_poll_seconds``."""
        self._thread = threading.Thread(target=self._run, name="location-publisher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop delivering after the push in flight; its lease runs out if it takes longer than ``timeout``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_due()
            except StorageError as exc:
                log.warning("location pushes paused: %s", exc)
            except Exception:
                log.exception("location pushes failed unexpectedly")
            self._stop.wait(self.settings.push_poll_seconds)

    def deliver_due(self) -> int:
        """Send every push due now, one claim at a time; returns how many were tried."""
        tried = 0
        while not self._stop.is_set():
            lease = uuid.uuid4().hex
            # The lease runs on the store's clock from the claim on, so it ends no sooner than the lease time
            # after the claim was sent: time left is counted from then, on this process's monotonic clock.
            claimed = time.monotonic()
            entry = self.storage.pushes.claim(lease, timedelta(seconds=self.settings.push_lease_seconds))
            if entry is None:
                return tried
            tried += 1
            self._deliver(entry, lease, claimed)
        return tried

    def _deliver(self, entry: dict[str, Any], lease: str, claimed: float) -> None:
        party = self.storage.parties.find(entry["party"])
        receiver = endpoint(party, "locations", "RECEIVER") if party else None
        if party is None or receiver is None:
            # Unregistered partner, or one that stopped receiving locations: nothing left to send.
            self.storage.pushes.complete(entry["id"], lease, entry["revision"])
            return
        # Fence: send only while this claim is still the latest revision and the lease outlasts the whole call,
        # so an older revision can never reach the partner after a newer one sent by another worker.
        margin = min(LEASE_MARGIN_SECONDS, self.settings.push_lease_seconds / 10)
        time_left = self.settings.push_lease_seconds - (time.monotonic() - claimed) - margin
        current = self.storage.pushes.find(entry["id"])
        if current is None or current.get("lease") != lease or time_left <= 0:
            return  # no longer ours: whoever holds it now sends it
        if current["revision"] != entry["revision"]:
            self.storage.pushes.complete(entry["id"], lease, entry["revision"])  # releases it for the newer one
            return
        location = self.storage.locations.find(entry["location_id"])
        if location is None:
            self.storage.pushes.complete(entry["id"], lease, entry["revision"])
            return
        settings = self.settings
        owner = f"{settings.ocpi_country_code}/{settings.ocpi_party_id}"
        url = f"{receiver.rstrip('/')}/{owner}/{quote(location['id'], safe='')}"
        role = party["roles"][0]
        routing = {
            "OCPI-to-country-code": role["country_code"],
            "OCPI-to-party-id": role["party_id"],
            "OCPI-from-country-code": settings.ocpi_country_code,
            "OCPI-from-party-id": settings.ocpi_party_id,
        }
        result: dict[str, Any] = {"location_id": location["id"], "at": self.clock()}
        try:
            self.client.call(
                STEP,
                "PUT",
                url,
                party["outbound_token"],
                party["token_encoding"],
                ocpi_location(location, settings),
                routing,
                deadline=min(settings.ocpi_call_deadline_seconds, time_left),
            )
        except PartnerFailed as exc:
            self._failed(entry, lease, party["key"], result, exc)
            return
        self.storage.pushes.record_result(
            {**self._identity(entry), "state": "delivered", "at": result["at"], "attempts": entry["attempts"] + 1}
        )
        self.storage.parties.record_push(party["key"], {**result, "ok": True})
        self.storage.pushes.complete(entry["id"], lease, entry["revision"])
        PUSHES.labels(party["key"], "ok").inc()

    @staticmethod
    def _identity(entry: dict[str, Any]) -> dict[str, Any]:
        return {"party": entry["party"], "location_id": entry["location_id"], "revision": entry["revision"]}

    def _failed(self, entry: dict[str, Any], lease: str, key: str, result: dict[str, Any], exc: PartnerFailed) -> None:
        """Record a failed push; retry it later unless the partner refused it or it has failed for too long."""
        now = self.clock()
        previous = next((r for r in self.storage.pushes.results(entry["location_id"]) if r["party"] == key), None)
        since = now
        if previous is not None and previous["state"] == "retrying" and previous["revision"] == entry["revision"]:
            since = previous.get("since", now)
        refused = isinstance(exc, AddressRefused) or (isinstance(exc, PartnerAnswered) and exc.final)
        expired = now - since >= timedelta(seconds=self.settings.push_give_up_seconds)
        final = refused or expired
        detail: dict[str, Any] = {"error": str(exc)}
        if isinstance(exc, PartnerAnswered):
            detail.update(http_status=exc.http_status, status_code=exc.status_code, status_message=exc.status_message)
        detail = {k: v for k, v in detail.items() if v is not None}
        # The result first, so that whoever sees the outbox change also sees why.
        self.storage.pushes.record_result(
            {
                **self._identity(entry),
                "state": "failed" if final else "retrying",
                "at": now,
                "since": since,
                "attempts": entry["attempts"] + 1,
                **detail,
            }
        )
        self.storage.parties.record_push(key, {**result, "ok": False, **detail})
        PUSHES.labels(key, "failed").inc()
        if final:
            # Removed if still at this revision; a newer revision queued meanwhile is sent as usual.
            self.storage.pushes.complete(entry["id"], lease, entry["revision"])
            reason = "refused" if refused else "expired"
            PUSH_FINAL_FAILURES.labels(key, reason).inc()
            log.warning("push of location %s to %s given up (%s): %s", entry["location_id"], key, reason, exc)
            return
        self.storage.pushes.retry(
            entry["id"], lease, entry["revision"], backoff(self.settings, entry["attempts"]), str(exc)
        )
        log.warning("push of location %s to %s failed, retrying: %s", entry["location_id"], key, exc)
