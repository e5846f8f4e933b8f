"""Fixtures shared by the integration and fault tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import SESSION_PREFIXES, Simulator, Worker, settings_for
from worker.celery_app import create_app
from worker.connections import connect_redis
from worker.ledger import Ledger
from worker.producer import Producer
from worker.settings import Settings


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for process logs and seeds."""
    return tmp_path_factory.mktemp("oppsync")


@pytest.fixture(scope="session", autouse=True)
def _wipe_test_keys() -> Iterator[None]:
    """Remove the keys this session's prefixes left in Redis (and only those:
    another session may be running against the same Redis)."""
    yield
    client = connect_redis(Settings.from_env().redis_url)
    for prefix in SESSION_PREFIXES:
        keys = list(client.scan_iter(f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.unlink(*keys[start : start + 500])


@pytest.fixture(scope="session")
def simulator(workdir: Path) -> Iterator[Simulator]:
    """The Capsule simulator, one process for the session."""
    sim = Simulator(workdir).start()
    yield sim
    sim.stop()


@pytest.fixture(autouse=True)
def _no_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts and ends without injected faults."""
    if "simulator" not in request.fixturenames:
        yield
        return
    sim: Simulator = request.getfixturevalue("simulator")
    sim.faults()
    yield
    sim.faults()


@pytest.fixture(scope="session")
def settings(simulator: Simulator) -> Settings:
    """Settings of the session's worker (its own key prefix)."""
    return settings_for(simulator)


@pytest.fixture(scope="session")
def worker(settings: Settings, workdir: Path) -> Iterator[Worker]:
    """One real Celery worker process for the session."""
    process = Worker(settings, workdir).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def ledger(settings: Settings) -> Ledger:
    """The session's ledger, read directly from Redis."""
    return Ledger(connect_redis(settings.redis_url), settings.key_prefix)


@pytest.fixture(scope="session")
def producer(settings: Settings, ledger: Ledger) -> Producer:
    """A producer sending to the session's queue."""
    return Producer(ledger, create_app(settings), settings.key_prefix)
