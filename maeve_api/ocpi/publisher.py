"""Delivery of queued location pushes, in a background thread of each worker.

Workers share the outbox in the store: each entry is claimed atomically with a lease, so only one worker
sends a given push at a time; a failed push is retried with an exponential back-off capped at
``push_backoff_max_seconds``; a push still queued when a worker stops is sent after the next start.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from maeve_api.errors import PartnerFailed
from maeve_api.metrics import PUSHES
from maeve_api.ocpi.client import PartnerClient
from maeve_api.ocpi.locations import ocpi_location
from maeve_api.ocpi.registration import endpoint
from maeve_api.schemas import utc_now
from maeve_api.settings import Settings
from maeve_api.storage import Storage, StorageError

log = logging.getLogger(__name__)

STEP = "PUT location"


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
        self.client = client or PartnerClient(settings.ocpi_connect_timeout, settings.ocpi_read_timeout)
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
            now = self.clock()
            lease = uuid.uuid4().hex
            entry = self.storage.pushes.claim(now, now + timedelta(seconds=self.settings.push_lease_seconds), lease)
            if entry is None:
                return tried
            tried += 1
            self._deliver(entry, lease)
        return tried

    def _deliver(self, entry: dict[str, Any], lease: str) -> None:
        party = self.storage.parties.find(entry["party"])
        location = self.storage.locations.find(entry["location_id"])
        receiver = endpoint(party, "locations", "RECEIVER") if party else None
        if party is None or location is None or receiver is None:
            # Unregistered partner, or one that stopped receiving locations: nothing left to send.
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
            )
        except PartnerFailed as exc:
            # The result first, so that whoever sees the outbox change also sees why.
            self.storage.parties.record_push(party["key"], {**result, "ok": False, "error": str(exc)})
            due = self.clock() + backoff(settings, entry["attempts"])
            self.storage.pushes.retry(entry["id"], lease, entry["revision"], due, str(exc))
            PUSHES.labels(party["key"], "failed").inc()
            log.warning("push of location %s to %s failed, retrying: %s", location["id"], party["key"], exc)
            return
        self.storage.parties.record_push(party["key"], {**result, "ok": True})
        self.storage.pushes.complete(entry["id"], lease, entry["revision"])
        PUSHES.labels(party["key"], "ok").inc()
