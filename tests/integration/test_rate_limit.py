"""The shared rate budget against a simulator with a small window."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import (
    SECOND_TOKEN,
    SEED,
    TOKEN,
    Simulator,
    Worker,
    settings_for,
    wait_for,
)
from worker.celery_app import create_app
from worker.connections import connect_redis
from worker.ledger import TERMINAL_STATES, Ledger
from worker.producer import Producer
from worker.settings import Settings

pytestmark = pytest.mark.integration

LIMIT, WINDOW_S = 30, 10.0


@pytest.fixture
def small_window(simulator: Simulator) -> Iterator[Simulator]:
    """The simulator with 30 requests per 10 s, restored afterwards."""
    simulator.admin("PUT", "ratelimit", {"limit": LIMIT, "window_s": WINDOW_S})
    yield simulator
    simulator.admin("PUT", "ratelimit", {"limit": 4000, "window_s": 3600})
    simulator.admin("PUT", "tokens", {"tokens": SEED["tokens"]})


@pytest.fixture
def fleet(
    small_window: Simulator, workdir: Path
) -> Iterator[Callable[..., tuple[Settings, Ledger, Producer]]]:
    """Start worker processes sharing one budget; all stop at the end."""
    started: list[Worker] = []

    def start(count: int = 2, **overrides: Any) -> tuple[Settings, Ledger, Producer]:
        options = {"rate_window_s": WINDOW_S, "rate_burst": 0.1, **overrides}
        settings = settings_for(small_window, **options)
        for n in range(count):
            started.append(
                Worker(settings, workdir, f"rate{n}").start(
                    pool="prefork", concurrency=2
                )
            )
        ledger = Ledger(connect_redis(settings.redis_url), settings.key_prefix)
        producer = Producer(ledger, create_app(settings), settings.key_prefix)
        return settings, ledger, producer

    yield start
    for worker in started:
        worker.kill()


def jobs(count: int, **extra: Any) -> list[tuple[int, dict[str, Any]]]:
    """Return ``count`` valid jobs with fresh keys."""
    return [
        (
            n,
            {
                "idempotencyKey": f"rate-{uuid.uuid4().hex[:10]}",
                "name": f"Deal {n}",
                "partyId": 100,
                "milestoneId": 30,
                **extra,
            },
        )
        for n in range(1, count + 1)
    ]


def finish_all(ledger: Ledger, keys: list[str], timeout_s: float) -> dict[str, str]:
    """Wait until every job is terminal; return key -> state."""

    def states() -> dict[str, str] | None:
        found = {k: (r.state if (r := ledger.get(k)) else "?") for k in keys}
        return found if all(s in TERMINAL_STATES for s in found.values()) else None

    return wait_for(states, timeout_s, "the jobs to finish")


def test_no_window_exceeds_the_limit(
    small_window: Simulator, fleet: Callable[..., tuple[Settings, Ledger, Producer]]
) -> None:
    """Two worker processes sharing a budget never exceed the window and see no 429."""
    _, ledger, producer = fleet(2)
    rejected_before = small_window.stats()["rateLimited"]
    batch = jobs(40)

    report = producer.submit_all(batch)
    states = finish_all(ledger, report.keys, 120)

    stats = small_window.stats()
    assert set(states.values()) == {"verified"}
    assert stats["rateLimited"] == rejected_before
    assert stats["maxAcceptedPerWindow"] <= LIMIT


def test_429_pauses_every_process(
    small_window: Simulator, fleet: Callable[..., tuple[Settings, Ledger, Producer]]
) -> None:
    """After a window is spent by someone else, the fleet learns of the 429
    once and waits for the reset instead of each process hitting it."""
    _, ledger, producer = fleet(2, rate_burst=1.0)
    spend_window(small_window)
    rejected_before = small_window.stats()["rateLimited"]

    report = producer.submit_all(jobs(10))
    states = finish_all(ledger, report.keys, 90)

    assert set(states.values()) == {"verified"}
    assert small_window.stats()["rateLimited"] - rejected_before <= 4


def spend_window(sim: Simulator, fresh: bool = False) -> None:
    """Use up a window with the workers' own token (with ``fresh``, the one
    that has just begun, so that its reset is a whole window away)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=sim.api_url, headers=headers) as client:
        if fresh:
            reset_s = float(client.get("users/current").headers["X-RateLimit-Reset"])
            wait_for(lambda: time.time() > reset_s + 0.05, WINDOW_S + 2, "a new window")
        for _ in range(LIMIT + 1):
            if client.get("users/current").status_code == 429:
                return
    raise AssertionError("the window did not run out")


def test_401_pauses_work_without_dead_letters(
    small_window: Simulator, fleet: Callable[..., tuple[Settings, Ledger, Producer]]
) -> None:
    """A refused token stops the work, kills no job, and work resumes once
    the token is accepted again."""
    _, ledger, producer = fleet(1, auth_recheck_s=1.0)
    small_window.admin("PUT", "tokens", {"tokens": {}})

    report = producer.submit_all(jobs(3))
    wait_for(lambda: ledger.state_counts().get("retrying", 0) >= 1, 30, "a refused try")
    paused = {k: ledger.get(k).state for k in report.keys}  # type: ignore[union-attr]
    small_window.admin(
        "PUT", "tokens", {"tokens": {TOKEN: {"user": 9, "scope": "write"}}}
    )
    states = finish_all(ledger, report.keys, 60)

    assert "dead" not in paused.values()
    assert set(states.values()) == {"verified"}


def test_two_accounts_do_not_slow_each_other(
    small_window: Simulator, fleet: Callable[..., tuple[Settings, Ledger, Producer]]
) -> None:
    """A spent budget on one Capsule account holds back its own jobs only."""
    accounts = json.dumps({"second": SECOND_TOKEN})
    _, ledger, producer = fleet(2, capsule_accounts=accounts)
    spend_window(small_window, fresh=True)

    held = producer.submit_all(jobs(4))
    free = producer.submit_all(jobs(4, account="second"))
    finish_all(ledger, free.keys, 8)
    held_states = {k: ledger.get(k).state for k in held.keys}  # type: ignore[union-attr]
    finish_all(ledger, held.keys, 30)

    assert "verified" not in held_states.values()


def test_job_waiting_past_its_deadline_ends_dead(
    small_window: Simulator, fleet: Callable[..., tuple[Settings, Ledger, Producer]]
) -> None:
    """A job still waiting when its overall deadline passes ends dead with a
    reason saying it ran out of time."""
    _, ledger, producer = fleet(1, auth_recheck_s=0.5, job_deadline_s=2.0)
    small_window.admin("PUT", "tokens", {"tokens": {}})

    report = producer.submit_all(jobs(1))
    states = finish_all(ledger, report.keys, 30)

    [key] = report.keys
    assert states == {key: "dead"}
    letter = ledger.dead_letter(key)
    assert letter["reason"] == "deadline"
    assert "ran out of time waiting for Capsule" in letter["message"]
