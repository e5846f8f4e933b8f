"""Fixtures for fault tests: short timeouts and workers that can be killed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import Simulator, Worker, settings_for
from worker.celery_app import create_app
from worker.connections import connect_redis
from worker.ledger import Ledger
from worker.producer import Producer
from worker.settings import Settings

#: Tight bounds so that redelivery after a lost worker takes seconds.
FAULT_BOUNDS = {
    "visibility_timeout_s": 20,
    "max_countdown_s": 3.5,
    "task_time_limit_s": 6,
    "lease_s": 3,
    "request_deadline_s": 2.5,
    "read_timeout_s": 1.5,
    "verify_delay_s": 0.3,
    "sweep_interval_s": 1.0,
    "sweep_stale_s": 4.0,
}


@pytest.fixture
def fault_settings(simulator: Simulator) -> Settings:
    """Settings with a fresh prefix and tight bounds, for one test."""
    return settings_for(simulator, **FAULT_BOUNDS)


@pytest.fixture
def fault_ledger(fault_settings: Settings) -> Ledger:
    """The ledger under the test's prefix."""
    return Ledger(connect_redis(fault_settings.redis_url), fault_settings.key_prefix)


@pytest.fixture
def fault_producer(fault_settings: Settings, fault_ledger: Ledger) -> Producer:
    """A producer for the test's queue."""
    return Producer(fault_ledger, create_app(fault_settings), fault_settings.key_prefix)


@pytest.fixture
def start_worker(
    fault_settings: Settings, workdir: Path
) -> Iterator[Callable[..., Worker]]:
    """Start workers for the test; every one is stopped at the end."""
    started: list[Worker] = []

    def start(
        name: str = "w", settings: Settings | None = None, **options: object
    ) -> Worker:
        process = Worker(settings or fault_settings, workdir, name)
        started.append(process)
        return process.start(**options)  # type: ignore[arg-type]

    yield start
    for process in started:
        process.kill()
