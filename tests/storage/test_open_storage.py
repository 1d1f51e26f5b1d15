"""open_storage: choosing the engine and the database from a URL."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from maeve_api.storage import StorageUnavailable, open_storage
from maeve_api.storage.mongo import MongoStorage
from maeve_api.storage.sqlite import SqliteStorage
from tests.storage.conftest import make_token

TOKEN = make_token()


@pytest.fixture
def opened():
    """Open storages through open_storage and close them after the test."""
    storages = []

    def open_(url):
        storage = open_storage(url)
        storages.append(storage)
        return storage

    yield open_
    for storage in storages:
        storage.close()


def test_sqlite_relative_url_opens_a_file_relative_to_the_working_directory(opened, tmp_path, monkeypatch):
    """sqlite:///data/maeve.db creates data/maeve.db under the current directory."""
    monkeypatch.chdir(tmp_path)
    storage = opened("sqlite:///data/maeve.db")
    storage.tokens.put(TOKEN)
    assert isinstance(storage, SqliteStorage)
    assert (tmp_path / "data" / "maeve.db").is_file()
    assert storage.tokens.find("DEADBEEF") == TOKEN


def test_sqlite_absolute_url_opens_that_file(opened, tmp_path):
    """sqlite:////absolute/path.db opens the file at that absolute path."""
    path = tmp_path / "nested" / "maeve.db"
    storage = opened(f"sqlite:///{path}")
    storage.registrations.put("tok-1", None)
    assert isinstance(storage, SqliteStorage)
    assert storage.path == path
    assert path.is_file()


def test_sqlite_data_persists_across_close_and_reopen(opened, tmp_path):
    """Everything written before close is there after opening the same file again."""
    url = f"sqlite:///{tmp_path / 'maeve.db'}"
    first = opened(url)
    first.charge_stations.put_auth("cs001", {"security_profile": 2, "password_hash": "h"})
    first.charge_stations.merge_settings("cs001", [{"name": "a.b", "value": "1", "status": "Pending"}])
    first.charge_stations.put_trigger("cs001", {"message": "Heartbeat", "status": "Pending"})
    first.tokens.put(TOKEN)
    first.certificates.put("hash", "pem")
    first.registrations.put("tok-1", "REGISTERED")
    first.locations.put({"id": "LOC1", "last_updated": TOKEN["last_updated"], "evses": [{"uid": "É"}]})
    first.close()
    second = opened(url)
    assert second.charge_stations.find_auth("cs001") == {
        "security_profile": 2,
        "password_hash": "h",
        "invalid_username_allowed": False,
    }
    assert second.charge_stations.settings("cs001") == [{"name": "a.b", "value": "1", "status": "Pending"}]
    assert second.charge_stations.find_trigger("cs001") == {"message": "Heartbeat", "status": "Pending"}
    assert second.tokens.find("DEADBEEF") == TOKEN
    assert second.certificates.find("hash") == {"hash": "hash", "pem": "pem"}
    assert second.registrations.find("tok-1") == {"token_hash": "tok-1", "status": "REGISTERED"}
    location = {"id": "LOC1", "last_updated": TOKEN["last_updated"], "evses": [{"uid": "É"}]}
    assert second.locations.find("LOC1") == location


def test_sqlite_storage_is_unusable_after_close(opened, tmp_path):
    """Using a closed SQLite storage raises StorageUnavailable rather than reopening the file."""
    storage = opened(f"sqlite:///{tmp_path / 'maeve.db'}")
    storage.close()
    with pytest.raises(StorageUnavailable):
        storage.tokens.find("DEADBEEF")


@pytest.mark.parametrize("engine", ["nx27017", "mongoeco"])
def test_mongodb_url_names_the_database(opened, make_storage_url, engine):
    """A mongodb:// URL's path is the database: a second storage on the same URL sees the data, another does not."""
    url = make_storage_url(engine)
    storage = opened(url)
    storage.tokens.put(TOKEN)
    assert isinstance(storage, MongoStorage)
    assert storage.db.name == url.rsplit("/", 1)[1]
    assert opened(url).tokens.find("DEADBEEF") == TOKEN
    assert opened(make_storage_url(engine)).tokens.find("DEADBEEF") is None


def test_mongodb_url_without_a_path_uses_the_maeve_database(opened, nx_server, nx_client):
    """Without a database in the URL the storage uses the database "maeve"."""
    try:
        storage = opened(nx_server)
        storage.registrations.put("tok-1", None)
        assert isinstance(storage, MongoStorage)
        assert storage.db.name == "maeve"
        assert opened(f"{nx_server}/maeve").registrations.find("tok-1") == {"token_hash": "tok-1", "status": "PENDING"}
    finally:
        nx_client.drop_database("maeve")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://localhost/maeve",
        "mysql://localhost/maeve",
        "file:///tmp/maeve.db",
        "/tmp/maeve.db",
        "",
        "sqlite3:///maeve.db",
        "sqlite://maeve.db",
        "sqlite:///",
        "sqlite:///:memory:",
        "sqlite:///maeve.db?mode=ro",
    ],
)
def test_unsupported_urls_raise_value_error(url, tmp_path, monkeypatch):
    """A URL of another scheme, or a SQLite URL without a usable file path, raises ValueError and creates nothing."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError):
        open_storage(url)
    assert list(tmp_path.iterdir()) == []


def _open_when_all_are_ready(path: Path, ready: Any, outcomes: Any) -> None:
    ready.wait()
    try:
        SqliteStorage(path).close()
        outcomes.put("opened")
    except StorageUnavailable as exc:
        outcomes.put(str(exc))


def test_workers_opening_a_new_sqlite_file_at_once_all_open_it(tmp_path):
    """`make run`'s workers open a new database at the same moment: each one opens it (none is refused with
    'database is locked' while another switches the file to WAL or creates the schema)."""
    context = multiprocessing.get_context("fork")
    outcomes: list[str] = []
    for round_ in range(25):
        ready, queue = context.Barrier(4), context.Queue()
        workers = [
            context.Process(target=_open_when_all_are_ready, args=(tmp_path / f"new-{round_}.db", ready, queue))
            for _ in range(4)
        ]
        for worker in workers:
            worker.start()
        outcomes += [queue.get(timeout=30) for _ in workers]
        for worker in workers:
            worker.join()
    assert [o for o in outcomes if o != "opened"] == []
