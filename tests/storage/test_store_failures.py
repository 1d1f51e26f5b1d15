"""Store failures: an unreachable MongoDB or an unwritable SQLite file raise StorageUnavailable, and service resumes."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from maeve_api.storage import StorageUnavailable, open_storage
from maeve_api.storage.mongo import MongoStorage
from maeve_api.storage.sqlite import SqliteStorage
from tests.conftest import free_port, start_nx, stop_process
from tests.storage.conftest import make_token

#: The longest a caller may wait for StorageUnavailable when MongoDB is down.
FAIL_FAST_SECONDS = 5.0

TOKEN = make_token()
SETTING = {"name": "HeartbeatInterval", "value": "60", "status": "Pending"}


def writes(storage):
    """One call of each kind of write: single statement, read-modify-write, conditional update and delete."""
    return [
        lambda: storage.tokens.put(TOKEN),
        lambda: storage.charge_stations.merge_settings("cs001", [SETTING]),
        lambda: storage.charge_stations.put_trigger("cs001", {"message": "Heartbeat", "status": "Pending"}),
        lambda: storage.registrations.remove("tok-1"),
    ]


@contextlib.contextmanager
def read_only(path):
    """Make a file unwritable for this process: mode 0444, and as root (which ignores modes) the immutable flag."""
    mode = stat.S_IMODE(path.stat().st_mode)
    chattr = shutil.which("chattr")
    immutable = False
    path.chmod(0o444)
    try:
        if os.geteuid() == 0:
            if chattr is None or subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode != 0:
                pytest.skip("running as root, which ignores file modes, and chattr +i is not available here")
            immutable = True
        yield
    finally:
        if immutable:
            subprocess.run([chattr, "-i", str(path)], check=True, capture_output=True)
        path.chmod(mode)


def test_mongodb_down_raises_storage_unavailable_fast_and_the_same_storage_recovers(tmp_path):
    """With the server stopped, calls raise StorageUnavailable within 5 s; after a restart the same storage works."""
    port = free_port()
    process, uri = start_nx(tmp_path, port)
    storage = MongoStorage.from_url(f"{uri}/maeve_outage")
    try:
        storage.tokens.put(TOKEN)
        assert storage.tokens.find("DEADBEEF") == TOKEN
        stop_process(process)
        for operation in (lambda: storage.tokens.find("DEADBEEF"), lambda: storage.tokens.put(TOKEN)):
            started = time.monotonic()
            with pytest.raises(StorageUnavailable):
                operation()
            assert time.monotonic() - started < FAIL_FAST_SECONDS
        process, _ = start_nx(tmp_path, port)
        storage.ping()
        assert storage.tokens.find("DEADBEEF") is None  # the restarted in-memory server is empty
        storage.tokens.put(TOKEN)
        assert storage.tokens.find("DEADBEEF") == TOKEN
    finally:
        storage.close()
        stop_process(process)


def test_mongodb_never_reachable_opens_and_then_raises_within_the_url_timeout():
    """Opening on a port nothing listens on succeeds; calls then fail within the URL's serverSelectionTimeoutMS."""
    # 300 ms instead of the 2 s default: the option in the URL must win over CLIENT_DEFAULTS.
    started = time.monotonic()
    storage = open_storage(f"mongodb://127.0.0.1:{free_port()}/maeve_down?serverSelectionTimeoutMS=300")
    try:
        assert time.monotonic() - started < 1.5
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            storage.registrations.put("tok-1", None)
        assert time.monotonic() - started < 1.5
    finally:
        storage.close()


def test_sqlite_writes_to_a_read_only_file_raise_storage_unavailable_until_it_is_writable_again(tmp_path):
    """While the file is read-only, writes raise StorageUnavailable and reads work; later the same thread writes."""
    path = tmp_path / "maeve.db"
    storage = SqliteStorage(path)
    # One long-lived worker thread, as a server's thread pool has: it opens its connection during the outage.
    worker = ThreadPoolExecutor(1)
    try:
        storage.charge_stations.put_auth("cs001", {"security_profile": 1})
        storage.registrations.put("tok-1", "REGISTERED")
        with read_only(path):
            for write in writes(storage):
                with pytest.raises(StorageUnavailable, match="readonly"):
                    worker.submit(write).result()
            with ThreadPoolExecutor(1) as reader:
                found = reader.submit(storage.registrations.find, "tok-1").result()
            assert found == {"token_hash": "tok-1", "status": "REGISTERED"}
        for write in writes(storage):
            worker.submit(write).result()
        assert storage.charge_stations.settings("cs001") == [SETTING]
        assert storage.tokens.find("DEADBEEF") == TOKEN
    finally:
        worker.shutdown()
        storage.close()


def test_sqlite_writes_while_another_connection_holds_the_lock_raise_storage_unavailable(tmp_path):
    """While another connection holds the write lock, writes raise StorageUnavailable; they work once it is released."""
    path = tmp_path / "maeve.db"
    storage = SqliteStorage(path, timeout=0.1)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        storage.charge_stations.put_auth("cs001", {"security_profile": 1})
        other.execute("BEGIN IMMEDIATE")
        for write in writes(storage):
            with pytest.raises(StorageUnavailable, match="locked"):
                write()
        assert storage.charge_stations.find_auth("cs001") == {"security_profile": 1, "invalid_username_allowed": False}
        other.execute("ROLLBACK")
        for write in writes(storage):
            write()
        assert storage.charge_stations.settings("cs001") == [SETTING]
    finally:
        other.close()
        storage.close()


def test_sqlite_file_that_is_not_a_database_raises_storage_unavailable(tmp_path):
    """Opening a file that is not a SQLite database raises StorageUnavailable, not a raw sqlite3 error."""
    path = tmp_path / "notes.txt"
    path.write_text("This is a text file, not a database.\n" * 100)
    with pytest.raises(StorageUnavailable, match="not a database"):
        open_storage(f"sqlite:///{path}")
    assert path.read_text() == "This is a text file, not a database.\n" * 100
