"""Shared fixtures: every storage engine, built one way for the storage, API and contract suites."""

from __future__ import annotations

import gc
import itertools
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import mongomock_ng as mongomock
import pytest
import requests
from hypothesis import settings
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from maeve_api.storage import Storage
from maeve_api.storage.mongo import MongoStorage
from maeve_api.storage.sqlite import SqliteStorage
from tests import mongoeco_engine
from tests.gunicorn_forkserver import ForkedProcess

#: Every engine a storage-backed test runs against; the one place to add an engine.
#: "mongodb" runs only when MAEVE_TEST_MONGODB_URI names a real server (tests drop their databases);
#: "mongoeco" where a Python 3.13 or later is on the machine (tests/mongoeco_engine.py).
STORAGE_ENGINES = ("sqlite", "mongomock", "nx27017", "mongoeco", "mongodb")
MONGODB_URI_VARIABLE = "MAEVE_TEST_MONGODB_URI"

NX_START_TIMEOUT = 15.0

# A run starts dozens of Python processes (pytest-xdist workers, gunicorn masters and workers, the maeve-api
# command, schemathesis): they read the bytecode and pytest's rewritten modules cached in __pycache__ (ignored by
# git) instead of compiling every module again. PYTHONDONTWRITEBYTECODE, which some environments set, would keep
# the caches from being written; the workers and servers started from here on write them.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
    sys.dont_write_bytecode = False


# Property tests assert what they assert, not how fast a case runs: hypothesis's default deadline of 200 ms per
# case failed them on a busy machine (a first call of 347 ms). Speed targets live in the benchmarks. Nothing is
# remembered between runs either (no .hypothesis directory shared by the pytest-xdist workers).
settings.register_profile("maeve", deadline=None, database=None)
settings.load_profile("maeve")


def _ephemeral_ports_start() -> int:
    """The first port the kernel hands out to a ``bind`` on port 0 or a ``connect``."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152  # IANA's dynamic range, where other kernels start theirs


def _own_ports() -> Iterator[int] | None:
    """This process's share of the ports below the kernel's ephemeral range, from a random point on.

    A port the kernel picked for a ``bind`` on port 0 is free only until the socket closes: before the server it
    was picked for binds it, any other ``bind`` on port 0 or ``connect`` on the machine may be given it (the
    in-thread OCPI servers and every client connection do that all the time), and the server then fails to start
    (``MAEVE_OCPP_PORT: port … is already in use``). Below the ephemeral range the kernel gives out no port by
    itself, and each pytest-xdist worker (and the controller) takes a band of its own there. None where that range
    leaves too few ports below it (the kernel then picks them, as before)."""
    first, end = 10_000, _ephemeral_ports_start()
    processes = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")) + 1
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw-1").removeprefix("gw")
    size = (end - first) // processes
    if size < 100:
        return None
    band = range(first + (int(worker) + 1) * size, first + (int(worker) + 2) * size)
    start = random.randrange(len(band))  # so that two runs side by side seldom take the same ports
    return itertools.cycle([*band[start:], *band[:start]])


_ports = _own_ports()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on or connects from right now, and that only a caller in this
    process will be given next (see ``_own_ports``)."""
    for port in itertools.islice(_ports, 1000) if _ports is not None else [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:  # taken, or lingering after a server that used it stopped
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port in this test process's band")


#: A process of the service under test: a new interpreter, or forked (``start_gunicorn_process``).
ServiceProcess = subprocess.Popen[bytes] | ForkedProcess


def start_gunicorn_process(
    database_url: str, log: Path, env: Mapping[str, str], *, forked: bool = False
) -> tuple[ServiceProcess, dict[str, int]]:
    """Start the service under gunicorn on the store, every listener on a free port (never the defaults, which
    parallel tests or a ``make run`` beside them would clash on); returns the process and the ports by listener.

    ``forked``: for a test about what the service serves, not how it starts, gunicorn is forked from a process that
    has the libraries imported already (tests/gunicorn_forkserver.py) instead of started as a new interpreter."""
    ports = {"api": free_port(), "ocpi": free_port(), "ocpp": free_port()}
    environment = {
        **os.environ,
        "MAEVE_DATABASE_URL": database_url,
        "MAEVE_API_PORT": str(ports["api"]),
        "MAEVE_OCPI_PORT": str(ports["ocpi"]),
        "MAEVE_OCPP_PORT": str(ports["ocpp"]),
        **env,
    }
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    argv = ["-c", "python:maeve_api.gunicorn_conf", "maeve_api.asgi:app"]
    if forked:
        return ForkedProcess(argv, environment, log), ports
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(gunicorn), *argv],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return process, ports


#: For a test's gunicorn when the test is about what its workers serve, not about how production loads the app:
#: the master imports the app once and the workers fork from it, instead of each worker importing and building it
#: again (2 workers: 1.5 s of CPU to become ready instead of 2.0 s; 3 workers: 1.7 s instead of 3.4 s). The
#: workers still open their own storage and run their own lifespan after the fork.
PRELOAD = {"GUNICORN_CMD_ARGS": "--preload"}


def module_store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, name: str) -> str:
    """A fresh store for the engine ``request.param`` names: a SQLite file, or a database of its own on the session's
    nx-27017."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp(name) / 'maeve.db'}"
    nx: str = request.getfixturevalue("nx_server")
    return f"{nx}/maeve_{name}_{uuid.uuid4().hex[:12]}"


def keep_shared_fixture_users_together(items: list[pytest.Item], directory: Path, prefix: str) -> None:
    """Keep the tests of ``directory`` that share a package- or module-scoped fixture (a service, a store) of one
    parameter set on one pytest-xdist worker (``--dist loadgroup``, tox.ini), so that the fixture is set up once,
    not once on every worker that runs one of them. A test using none (one that starts its own service) stays free,
    so that such tests spread over the workers instead of queueing behind one another. Call it from a ``tryfirst``
    hook ``pytest_collection_modifyitems``, before pytest-xdist reads the marks."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if item.path.parent != directory or info is None:
            continue
        scopes = {name: definitions[-1].scope for name, definitions in info.name2fixturedefs.items()}
        params = item.callspec.params if hasattr(item, "callspec") else {}
        for scope, group in (("package", prefix), ("module", f"{prefix}-{item.path.stem}")):
            shared = [name for name, used in scopes.items() if used == scope]
            if shared:
                key = "-".join(str(params[name]) for name in shared if name in params)
                item.add_marker(pytest.mark.xdist_group(f"{group}-{key}"))
                break


def answering(process: ServiceProcess, urls: Sequence[str], timeout: float) -> bool:
    """Whether every URL answers 200 within ``timeout`` seconds while ``process`` runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if all(requests.get(url, timeout=1).status_code == 200 for url in urls):
                return True
        except (requests.ConnectionError, requests.Timeout):  # still booting
            pass
        time.sleep(0.1)
    return False


def start_nx(directory: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start nx-27017 (in-memory) on loopback and wait until it answers ``ping``; returns it and its URI."""
    executable = Path(sys.executable).parent / "nx-27017"
    last_log = ""
    for attempt in range(3):  # another process may grab a free port before nx-27017 binds it
        chosen = port if port is not None else free_port()
        log_file = directory / f"nx-{chosen}-{attempt}.log"
        process = subprocess.Popen(
            [
                str(executable),
                "--db",
                "memory",
                "-p",
                str(chosen),
                "--host",
                "127.0.0.1",
                "--log-file",
                str(log_file),
                "--pid-file",
                str(directory / f"nx-{chosen}-{attempt}.pid"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        uri = f"mongodb://127.0.0.1:{chosen}"
        deadline = time.monotonic() + NX_START_TIMEOUT
        with MongoClient(uri, serverSelectionTimeoutMS=200, connectTimeoutMS=200) as probe:
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    probe.admin.command("ping")
                    return process, uri
                except PyMongoError:
                    time.sleep(0.05)
        stop_process(process)
        last_log = log_file.read_text(errors="replace") if log_file.exists() else ""
        if port is not None:
            break
    raise RuntimeError(f"nx-27017 did not answer ping within {NX_START_TIMEOUT} s; its log:\n{last_log[-2000:]}")


def stop_process(process: ServiceProcess) -> None:
    """Terminate a process we started, killing it if it does not exit within 5 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_nx(process: subprocess.Popen[bytes]) -> None:
    """Stop an nx-27017 we started: killed, since in memory it has nothing to keep, and on SIGTERM it
    takes the whole 5 s grace of ``stop_process`` to exit."""
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def nx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of an in-memory nx-27017 MongoDB wire-protocol server on loopback, shared by the session."""
    process, uri = start_nx(tmp_path_factory.mktemp("nx-27017"))
    try:
        yield uri
    finally:
        stop_nx(process)


@pytest.fixture(scope="session")
def nx_client(nx_server: str) -> Iterator[MongoClient]:
    """One pymongo client to the session's nx-27017 server."""
    with MongoClient(nx_server, tz_aware=True, tzinfo=UTC, serverSelectionTimeoutMS=5000) as client:
        yield client


@pytest.fixture(scope="session")
def mongoeco_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of mongoeco's wire proxy (in-memory) on loopback, shared by the session; skips without Python 3.13."""
    try:
        process, uri = mongoeco_engine.start_proxy(tmp_path_factory.mktemp("mongoeco") / "proxy.log")
    except mongoeco_engine.Unavailable as error:
        pytest.skip(str(error))
    try:
        yield uri
    finally:
        mongoeco_engine.stop_proxy(process)


@pytest.fixture(scope="session")
def mongoeco_client(mongoeco_server: str) -> Iterator[MongoClient]:
    """One pymongo client to the session's mongoeco proxy."""
    with MongoClient(mongoeco_server, tz_aware=True, tzinfo=UTC, serverSelectionTimeoutMS=5000) as client:
        yield client


#: The session fixtures of the engines served over a socket: (client, URI).
_MONGO_FIXTURES = {
    "nx27017": ("nx_client", "nx_server"),
    "mongoeco": ("mongoeco_client", "mongoeco_server"),
}


@pytest.fixture(scope="session")
def mongodb_client() -> Iterator[MongoClient]:
    """A pymongo client to the real MongoDB named by MAEVE_TEST_MONGODB_URI; skips when it is not set."""
    uri = os.environ.get(MONGODB_URI_VARIABLE)
    if not uri:
        pytest.skip(f"{MONGODB_URI_VARIABLE} is not set")
    with MongoClient(uri, tz_aware=True, tzinfo=UTC, serverSelectionTimeoutMS=5000) as client:
        yield client


def _with_database(uri: str, database: str) -> str:
    """The MongoDB URI with its path replaced by ``/database`` (options kept)."""
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def empty_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file as a new store leaves it, copied for each test's fresh store instead of creating one: its
    schema's steps cost 5 ms of CPU, for each of the hundreds of stores the tests open. (The tests of a new file
    being created open SqliteStorage themselves.)"""
    path = tmp_path_factory.mktemp("sqlite") / "empty.db"
    SqliteStorage(path).close()
    return path


def _fresh_sqlite(template: Path, path: Path) -> Path:
    shutil.copyfile(template, path)
    return path


@pytest.fixture
def make_storage(
    request: pytest.FixtureRequest, tmp_path: Path, empty_sqlite: Path
) -> Iterator[Callable[[str], Storage]]:
    """Factory ``make_storage(engine)``: a fresh, empty storage on that engine, closed (and dropped) after the test."""
    opened: list[Storage] = []
    dropped: list[tuple[MongoClient, str]] = []
    counter = itertools.count()

    def make(engine: str) -> Storage:
        storage: Storage
        if engine == "sqlite":
            storage = SqliteStorage(_fresh_sqlite(empty_sqlite, tmp_path / f"maeve-{next(counter)}.db"))
        elif engine == "mongomock":
            storage = MongoStorage(mongomock.MongoClient(), "maeve")
        elif engine in (*_MONGO_FIXTURES, "mongodb"):
            client: MongoClient = request.getfixturevalue(_MONGO_FIXTURES.get(engine, ("mongodb_client",))[0])
            database = f"maeve_test_{uuid.uuid4().hex[:12]}"
            dropped.append((client, database))
            storage = MongoStorage(client, database)
        else:
            raise ValueError(f"unknown storage engine {engine!r}; known: {STORAGE_ENGINES}")
        opened.append(storage)
        return storage

    yield make
    for storage in opened:
        storage.close()
    for client, database in dropped:
        client.drop_database(database)


@pytest.fixture
def make_storage_url(
    request: pytest.FixtureRequest, tmp_path: Path, empty_sqlite: Path
) -> Iterator[Callable[[str], str]]:
    """Factory ``make_storage_url(engine)``: a URL for ``open_storage`` naming a fresh, empty store.

    mongomock has no URL and raises ValueError.
    """
    dropped: list[tuple[MongoClient, str]] = []
    counter = itertools.count()

    def make(engine: str) -> str:
        if engine == "sqlite":
            return f"sqlite:///{_fresh_sqlite(empty_sqlite, tmp_path / f'maeve-url-{next(counter)}.db')}"
        if engine in (*_MONGO_FIXTURES, "mongodb"):
            client: MongoClient = request.getfixturevalue(_MONGO_FIXTURES.get(engine, ("mongodb_client",))[0])
            base = (
                request.getfixturevalue(_MONGO_FIXTURES[engine][1])
                if engine in _MONGO_FIXTURES
                else os.environ[MONGODB_URI_VARIABLE]
            )
            database = f"maeve_test_{uuid.uuid4().hex[:12]}"
            dropped.append((client, database))
            return _with_database(base, database)
        if engine == "mongomock":
            raise ValueError("mongomock has no URL; use make_storage('mongomock')")
        raise ValueError(f"unknown storage engine {engine!r}; known: {STORAGE_ENGINES}")

    yield make
    for client, database in dropped:
        client.drop_database(database)


@pytest.fixture(params=STORAGE_ENGINES)
def storage_engine(request: pytest.FixtureRequest) -> str:
    """Each engine name in turn; "mongodb" is skipped unless MAEVE_TEST_MONGODB_URI is set."""
    engine: str = request.param
    if engine == "mongodb" and not os.environ.get(MONGODB_URI_VARIABLE):
        pytest.skip(f"{MONGODB_URI_VARIABLE} is not set")
    return engine


@pytest.fixture
def storage(storage_engine: str, make_storage: Callable[[str], Storage]) -> Storage:
    """A fresh, empty storage, once per engine."""
    return make_storage(storage_engine)


@pytest.hookimpl(trylast=True)  # after pytest's own ordering by fixture, which the sort keeps otherwise
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run tests/system first: its tests start servers of their own and wait on them for seconds, and queued last
    they left one worker finishing them alone while the others had nothing left (on 2 cores, 4 workers: 59 to
    66 s with them first, 65 to 67 s without)."""
    system = Path(__file__).parent / "system"
    items.sort(key=lambda item: system not in item.path.parents)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (tox.ini) starts two pytest-xdist workers more than there are cores.

    Much of the suite waits rather than computes (store timeouts, gunicorn and nx-27017 starting,
    partners that never answer), and spare workers run tests during those waits: on 2 cores the
    suite took 69 s with 3 workers, 59 to 66 s with 4 and 63 s with 5.
    """
    return (os.cpu_count() or 1) + 2


#: Builds hypothesis's Unicode tables, which it keeps under ``.hypothesis`` once built.
_UNICODE_TABLES = (
    "from hypothesis import Phase, find, settings; from hypothesis.strategies import characters; "
    "find(characters(codec='utf-8'), bool, settings=settings(database=None, phases=[Phase.generate]))"
)
_unicode_tables = pytest.StashKey[subprocess.Popen[bytes]]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Have hypothesis build its Unicode tables once, in a process of their own, while the pytest-xdist workers start.

    It builds them the first time a run generates text (1.1 s of CPU) and keeps them (in the working directory, as
    the workers do); in a new checkout every worker built them again, all at once: the whole run took 62.1 and
    61.6 s that way, 59.8 and 59.8 s with this. A worker that gets to them before they are kept builds them itself.
    """
    if not hasattr(session.config, "workerinput"):
        session.config.stash[_unicode_tables] = subprocess.Popen(
            [sys.executable, "-c", _UNICODE_TABLES], stdout=subprocess.DEVNULL
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    if (process := session.config.stash.get(_unicode_tables, None)) is not None:
        process.wait()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Keep what is alive once the tests are collected out of the garbage collector's full passes.

    That is the imported libraries and the collected items, which live as long as the run: over 150,000 objects in
    each worker, walked again by every full collection and once more as the worker exits. The garbage the tests make
    is collected as before. Tests of 3 directories (api, storage, contract) took 46 s of CPU with them frozen and
    49 s without; the workers' exit, 0.3 s instead of 0.9 s.
    """
    gc.collect()
    gc.freeze()


#: The known gap of the stand-ins without a clock of their own, for ``engine_gap``: due times and leases are set
#: and compared on the server's clock, ``$$NOW`` in an aggregation-pipeline update or ``$expr``.
NO_SERVER_CLOCK = {
    "mongomock": "no $$NOW: it is null in pipeline updates and $expr, so an outbox entry is never due, a token B "
    "never expires and an abandoned identity claim is never free",
    "nx27017": "no aggregation-pipeline updates and no $$NOW, which the outbox's due times and leases, a token B's "
    "expiry and the end of an abandoned identity claim use",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "engine_gap(**gaps): known gaps of stand-in engines (keyword: the engine, value: the gap); the test's "
        "variant on each of them (an engine named by one of its parameters) is a strict xfail naming the gap",
    )


@pytest.fixture(autouse=True)
def _engine_gaps(request: pytest.FixtureRequest) -> None:
    """Apply ``engine_gap``: a stand-in that lacks what the test needs must fail it, reported as that gap.

    Strict, so a stand-in that gains the feature turns the xfail into a failure, and the mark is removed. The
    expected failure is reported by its exception's line, not a traceback nobody is shown: pytest would read and
    parse the source of every frame of it, 60 ms of CPU each.
    """
    callspec = getattr(request.node, "callspec", None)
    params = callspec.params.values() if callspec is not None else ()
    engine = next((value for value in params if isinstance(value, str) and value in STORAGE_ENGINES), None)
    for marker in request.node.iter_markers("engine_gap"):
        if engine in marker.kwargs:
            request.applymarker(pytest.mark.xfail(strict=True, reason=f"{engine}: {marker.kwargs[engine]}"))
            request.node.repr_failure = lambda excinfo: excinfo.exconly()  # type: ignore[method-assign]
