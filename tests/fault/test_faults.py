"""Exactly-once creation under faults, with real processes killed for real.

Every test checks what the simulator actually created, per job key.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    BETA,
    PersistentRedis,
    Simulator,
    Worker,
    marker_of,
    wait_for,
)
from worker.celery_app import create_app
from worker.connections import connect_redis
from worker.ledger import TERMINAL_STATES, Ledger
from worker.producer import EnqueueReport, Producer
from worker.settings import Settings

pytestmark = pytest.mark.fault


def a_job(**changes: Any) -> dict[str, Any]:
    """Return a valid job with a fresh key."""
    job: dict[str, Any] = {
        "idempotencyKey": f"fault-{uuid.uuid4().hex[:12]}",
        "name": "Fault test deal",
        "party": {"name": "Betatech"},
        "milestone": {"pipeline": "Sales", "name": "Prospecting"},
        "owner": {"username": "bob"},
        "team": {"name": "East"},
    }
    job.update(changes)
    return job


def enqueue(producer: Producer, jobs: list[dict[str, Any]]) -> EnqueueReport:
    """Enqueue ``jobs``; every one must be accepted."""
    report = producer.submit_all(enumerate(jobs, start=1))
    assert report.enqueued == len(jobs), report.refusals
    return report


def all_finished(ledger: Ledger, keys: list[str], timeout_s: float) -> dict[str, str]:
    """Wait until every job is terminal; return key -> state."""

    last: dict[str, str] = {}

    def states() -> dict[str, str] | None:
        last.update({k: (r.state if (r := ledger.get(k)) else "missing") for k in keys})
        return dict(last) if all(s in TERMINAL_STATES for s in last.values()) else None

    try:
        return wait_for(states, timeout_s, f"{len(keys)} jobs to finish")
    except AssertionError as exc:
        stuck = {k: ledger.get(k) for k, s in last.items() if s not in TERMINAL_STATES}
        raise AssertionError(
            f"{exc}; states {Counter(last.values())}; "
            f"unfinished {list(stuck.items())[:3]}"
        ) from None


def created_per_key(sim: Simulator, keys: list[str]) -> Counter[str]:
    """Count the simulator's opportunities per job key."""
    wanted = set(keys)
    return Counter(k for o in sim.opportunities() if (k := marker_of(o)) in wanted)


def holder_pid(ledger: Ledger, key: str) -> int | None:
    """Return the pid of the process holding the job's lease, if any."""
    holder = ledger._redis.hget(ledger.job_key(key), "leaseHolder")
    return int(str(holder).split(":")[1]) if holder else None


def test_commit_answered_after_timeout_is_adopted(
    simulator: Simulator,
    fault_producer: Producer,
    fault_ledger: Ledger,
    start_worker: Callable[..., Worker],
) -> None:
    """A create committed but answered after the read timeout yields one
    opportunity, adopted, and the job still ends verified."""
    start_worker(pool="prefork", concurrency=2)
    job = a_job()
    simulator.faults(
        {
            "kind": "commit_late",
            "method": "POST",
            "path": "/opportunities",
            "delay_s": 3.0,
            "count": 1,
        }
    )

    enqueue(fault_producer, [job])
    states = all_finished(fault_ledger, [job["idempotencyKey"]], 60)

    assert states == {job["idempotencyKey"]: "verified"}
    assert created_per_key(simulator, [job["idempotencyKey"]]) == {
        job["idempotencyKey"]: 1
    }
    raw = fault_ledger._redis.hgetall(fault_ledger.job_key(job["idempotencyKey"]))
    assert raw["createdVia"] == "adopted"


def test_commit_answered_with_502_is_adopted(
    simulator: Simulator,
    fault_producer: Producer,
    fault_ledger: Ledger,
    start_worker: Callable[..., Worker],
) -> None:
    """A create committed but answered 502 yields exactly one opportunity."""
    start_worker(pool="prefork", concurrency=2)
    jobs = [a_job() for _ in range(5)]
    keys = [j["idempotencyKey"] for j in jobs]
    simulator.faults({"kind": "commit_502", "method": "POST", "path": "/opportunities"})

    enqueue(fault_producer, jobs[:1])
    wait_for(lambda: simulator.stats()["faultsFired"].get("commit_502", 0) >= 1, 30)
    simulator.faults()
    enqueue(fault_producer, jobs[1:])
    all_finished(fault_ledger, keys, 60)

    assert created_per_key(simulator, keys) == dict.fromkeys(keys, 1)


def test_pool_child_killed_mid_post_then_whole_worker_killed(
    simulator: Simulator,
    fault_producer: Producer,
    fault_ledger: Ledger,
    start_worker: Callable[..., Worker],
) -> None:
    """SIGKILL of the pool child during its POST, then of the whole worker:
    after a restart every job ends terminal and none is created twice."""
    worker = start_worker("first", pool="prefork", concurrency=2)
    victim = a_job()
    simulator.faults(
        {
            "kind": "commit_late",
            "method": "POST",
            "path": "/opportunities",
            "delay_s": 1.5,
            "count": 1,
        }
    )
    enqueue(fault_producer, [victim])
    pid = wait_for(lambda: holder_pid(fault_ledger, victim["idempotencyKey"]), 30)
    wait_for(lambda: simulator.stats()["faultsFired"].get("commit_late", 0) >= 1, 30)
    os.kill(pid, signal.SIGKILL)

    others = [a_job() for _ in range(30)]
    simulator.faults(
        {"kind": "latency", "method": "POST", "path": "/opportunities", "delay_s": 0.2}
    )
    enqueue(fault_producer, others)
    wait_for(
        lambda: (
            fault_ledger.state_counts().get("created", 0)
            + fault_ledger.state_counts().get("verified", 0)
            >= 3
        ),
        60,
    )
    worker.kill()
    simulator.faults()
    start_worker("second", pool="prefork", concurrency=2)

    keys = [victim["idempotencyKey"]] + [j["idempotencyKey"] for j in others]
    states = all_finished(fault_ledger, keys, 120)

    assert set(states.values()) == {"verified"}, Counter(states.values())
    assert created_per_key(simulator, keys) == dict.fromkeys(keys, 1)


def test_redis_restart_mid_run(
    simulator: Simulator,
    fault_settings: Settings,
    start_worker: Callable[..., Worker],
    tmp_path: Path,
) -> None:
    """A Redis restart (with persistence) mid-run: work resumes (the watchdog
    restarts a worker whose consumer stalled, its supervisor starts a new
    one) and nothing is created twice."""
    server = PersistentRedis(tmp_path)
    server.start()
    try:
        settings = fault_settings.with_overrides(redis_url=server.url)
        ledger = Ledger(connect_redis(server.url), settings.key_prefix)
        producer = Producer(ledger, create_app(settings), settings.key_prefix)
        start_worker(
            "on-private-redis",
            settings=settings,
            pool="prefork",
            concurrency=2,
            beat=True,
            supervise=True,
        )
        simulator.faults(
            {
                "kind": "latency",
                "method": "POST",
                "path": "/opportunities",
                "delay_s": 0.1,
            }
        )
        before = [a_job() for _ in range(30)]
        enqueue(producer, before)
        wait_for(lambda: ledger.state_counts().get("verified", 0) >= 3, 60)

        server.stop()
        time.sleep(1.0)  # the outage itself, not a synchronisation
        server.start()
        after = [a_job() for _ in range(10)]
        enqueue(producer, after)

        keys = [j["idempotencyKey"] for j in before + after]
        states = all_finished(ledger, keys, 150)
    finally:
        server.stop()

    assert set(states.values()) == {"verified"}, Counter(states.values())
    assert created_per_key(simulator, keys) == dict.fromkeys(keys, 1)


def _submit_from_process(settings_env: dict[str, str], job: dict[str, Any]) -> str:
    os.environ.update(settings_env)
    settings = Settings.from_env()
    ledger = Ledger(connect_redis(settings.redis_url), settings.key_prefix)
    report = Producer(ledger, create_app(settings), settings.key_prefix).submit_all(
        [(1, job)]
    )
    return "new" if report.enqueued else "duplicate" if report.duplicates else "refused"


def test_same_job_enqueued_concurrently_makes_one_opportunity(
    simulator: Simulator,
    fault_settings: Settings,
    fault_ledger: Ledger,
    start_worker: Callable[..., Worker],
) -> None:
    """Six processes enqueueing the same job at once make one job and one
    opportunity."""
    start_worker(pool="prefork", concurrency=2)
    job = a_job()
    context = multiprocessing.get_context("spawn")

    with context.Pool(6) as pool:
        outcomes = pool.starmap(
            _submit_from_process, [(fault_settings.to_env(), job)] * 6
        )
    all_finished(fault_ledger, [job["idempotencyKey"]], 60)

    assert sorted(outcomes) == ["duplicate"] * 5 + ["new"]
    assert created_per_key(simulator, [job["idempotencyKey"]]) == {
        job["idempotencyKey"]: 1
    }


def test_job_that_kills_its_worker_ends_dead_while_others_flow(
    simulator: Simulator,
    fault_settings: Settings,
    start_worker: Callable[..., Worker],
) -> None:
    """A job whose processing kills the worker process every time ends dead
    ("worker lost N times") after the configured losses; other jobs finish."""
    settings = fault_settings.with_overrides(max_worker_losses=2)
    ledger = Ledger(connect_redis(settings.redis_url), settings.key_prefix)
    producer = Producer(ledger, create_app(settings), settings.key_prefix)
    start_worker(settings=settings, pool="prefork", concurrency=2)
    # The poison job's party search is slow, so each run is killed before
    # anything is sent; the other jobs give their party by id.
    simulator.faults(
        {"kind": "latency", "method": "GET", "path": "/parties/search", "delay_s": 1.0}
    )
    poison = a_job(party={"name": "Acme Corporation"})
    stop = threading.Event()
    killer = threading.Thread(
        target=_kill_every_holder, args=(ledger, poison["idempotencyKey"], stop)
    )
    killer.start()
    try:
        others = [a_job(party=None, partyId=BETA) for _ in range(10)]
        for other in others:
            del other["party"]
        enqueue(producer, [poison, *others])
        keys = [poison["idempotencyKey"]] + [j["idempotencyKey"] for j in others]
        states = all_finished(ledger, keys, 120)
    finally:
        stop.set()
        killer.join()

    assert states.pop(poison["idempotencyKey"]) == "dead"
    letter = ledger.dead_letter(poison["idempotencyKey"])
    assert letter["reason"] == "worker_lost"
    assert "worker lost 2 times" in letter["message"]
    assert set(states.values()) == {"verified"}
    assert created_per_key(simulator, list(states)) == dict.fromkeys(states, 1)


def _kill_every_holder(ledger: Ledger, key: str, stop: threading.Event) -> None:
    """SIGKILL each process that takes the job's lease, as a crashing
    payload would, until told to stop."""
    killed: set[int] = set()
    while not stop.is_set():
        pid = holder_pid(ledger, key)
        if pid and pid not in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        time.sleep(0.005)


def test_sweep_rescues_jobs_whose_messages_were_lost(
    simulator: Simulator,
    fault_settings: Settings,
    fault_ledger: Ledger,
    start_worker: Callable[..., Worker],
) -> None:
    """A job admitted without its message, and one created without its
    verification message, are both finished by the periodic sweep."""
    from worker.job import parse_job

    start_worker(pool="prefork", concurrency=2, beat=True)
    lost_create = parse_job(a_job())
    fault_ledger.admit(lost_create)
    lost_verify = parse_job(a_job())
    fault_ledger.admit(lost_verify)
    made = simulator_create(simulator, lost_verify.key)
    fault_ledger.record_created(lost_verify.key, made, "posted")

    states = all_finished(fault_ledger, [lost_create.key, lost_verify.key], 60)

    assert states == {lost_create.key: "verified", lost_verify.key: "verified"}
    assert created_per_key(simulator, [lost_create.key, lost_verify.key]) == {
        lost_create.key: 1,
        lost_verify.key: 1,
    }


def simulator_create(sim: Simulator, key: str) -> int:
    """Create an opportunity for ``key`` directly in the simulator."""
    import httpx

    from tests.support import BETA, BOB, EAST, JOB_KEY_FIELD, PROSPECTING, TOKEN

    body = {
        "opportunity": {
            "name": "Fault test deal",
            "party": {"id": BETA},
            "milestone": {"id": PROSPECTING},
            "owner": {"id": BOB},
            "team": {"id": EAST},
            "fields": [{"definition": {"id": JOB_KEY_FIELD}, "value": key}],
        }
    }
    response = httpx.post(
        f"{sim.api_url}/opportunities",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    response.raise_for_status()
    return int(response.json()["opportunity"]["id"])


def test_create_lost_with_its_worker_is_adopted_not_dead(
    simulator: Simulator,
    fault_settings: Settings,
    start_worker: Callable[..., Worker],
) -> None:
    """A job whose worker died mid-POST as often as allowed adopts the
    opportunity that POST made instead of ending dead beside it."""
    settings = fault_settings.with_overrides(max_worker_losses=1)
    ledger = Ledger(connect_redis(settings.redis_url), settings.key_prefix)
    producer = Producer(ledger, create_app(settings), settings.key_prefix)
    start_worker(settings=settings, pool="prefork", concurrency=2)
    job = a_job()
    simulator.faults(
        {
            "kind": "commit_late",
            "method": "POST",
            "path": "/opportunities",
            "delay_s": 2.0,
            "count": 1,
        }
    )
    enqueue(producer, [job])
    pid = wait_for(lambda: holder_pid(ledger, job["idempotencyKey"]), 30)
    wait_for(lambda: simulator.stats()["faultsFired"].get("commit_late", 0) >= 1, 30)
    os.kill(pid, signal.SIGKILL)

    states = all_finished(ledger, [job["idempotencyKey"]], 60)

    assert states == {job["idempotencyKey"]: "verified"}
    assert created_per_key(simulator, [job["idempotencyKey"]]) == {
        job["idempotencyKey"]: 1
    }


def test_without_marker_field_the_name_search_adopts(
    simulator: Simulator,
    fault_settings: Settings,
    start_worker: Callable[..., Worker],
) -> None:
    """Without a marker field, a create answered 502 is found among the
    party's opportunities by name and adopted: still one opportunity."""
    settings = fault_settings.with_overrides(capsule_job_key_field="")
    ledger = Ledger(connect_redis(settings.redis_url), settings.key_prefix)
    producer = Producer(ledger, create_app(settings), settings.key_prefix)
    start_worker(settings=settings, pool="prefork", concurrency=2)
    job = a_job(name=f"Unmarked deal {uuid.uuid4().hex[:8]}")
    simulator.faults(
        {"kind": "commit_502", "method": "POST", "path": "/opportunities", "count": 1}
    )

    enqueue(producer, [job])
    states = all_finished(ledger, [job["idempotencyKey"]], 60)

    named = [o for o in simulator.opportunities() if o["name"] == job["name"]]
    assert states == {job["idempotencyKey"]: "verified"}
    assert [o["id"] for o in named] == [
        ledger.get(job["idempotencyKey"]).opportunity_id
    ]  # type: ignore[union-attr]
