"""The shared rate budget against plain Celery ``rate_limit``, in one run.

A backlog runs through three worker processes (threads pool, 4 threads
each) against the simulator with a small window (100 requests per 20 s by
default), first with oppsync's shared budget, then with the budget off and
Celery's per-worker ``rate_limit`` set to the same limit, which is what
users reach for first. Reports accepted requests per second as a share of
the allowed rate, the number of 429s, and jobs per second.

    python -m benchmarks.rate_budget [--limit 100] [--window-s 20] [--windows 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import (
    bench_settings,
    report,
    sim_admin,
    simulator,
    wait_until,
    workers,
)
from worker.celery_app import create_app
from worker.connections import connect_redis
from worker.ledger import Ledger
from worker.producer import Producer
from worker.settings import Settings

WORKERS, THREADS = 3, 4


def backlog(count: int) -> list[tuple[int, dict[str, Any]]]:
    """Jobs by id (two Capsule requests each: create and verify)."""
    return [
        (
            n,
            {
                "idempotencyKey": f"rate-{uuid.uuid4().hex[:12]}",
                "name": f"Deal {n}",
                "partyId": 1001,
                "milestoneId": 401,
            },
        )
        for n in range(1, count + 1)
    ]


def run(
    sim_url: str, settings: Settings, jobs: int, limit: int, window_s: float
) -> dict[str, Any]:
    """Run the backlog through the workers; return what the simulator saw."""
    sim_admin(sim_url, "POST", "reset")
    sim_admin(sim_url, "PUT", "ratelimit", {"limit": limit, "window_s": window_s})
    client = connect_redis(settings.redis_url)
    ledger = Ledger(client, settings.key_prefix)
    producer = Producer(ledger, create_app(settings), settings.key_prefix)
    with workers(settings, WORKERS, "threads", THREADS):
        started = time.monotonic()
        producer.submit_all(backlog(jobs))
        wait_until(lambda: ledger.active_count() == 0, 1800, "the backlog")
        elapsed_s = time.monotonic() - started
    stats = sim_admin(sim_url, "GET", "stats")
    states = ledger.state_counts()
    for key in client.scan_iter(f"{settings.key_prefix}:*", count=1000):
        client.unlink(key)
    accepted = stats["requests"] - stats["rateLimited"]
    return {
        "elapsed_s": elapsed_s,
        "accepted_per_s": accepted / elapsed_s,
        "rate_429": stats["rateLimited"],
        "jobs_per_s": jobs / elapsed_s,
        "max_window": stats.get("maxAcceptedPerWindow"),
        "states": states,
    }


def main() -> None:
    """Measure both set-ups and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--window-s", type=float, default=20.0)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    allowed_per_s = args.limit / args.window_s
    jobs = args.limit * args.windows // 2
    per_worker = f"{args.limit / args.window_s:g}/s"
    with tempfile.TemporaryDirectory() as folder, simulator(Path(folder)) as sim_url:
        shared = run(
            sim_url,
            bench_settings(
                sim_url,
                rate_window_s=args.window_s,
                verify_delay_s=0.5,
                capsule_job_key_field="",
            ),
            jobs,
            args.limit,
            args.window_s,
        )
        plain = run(
            sim_url,
            bench_settings(
                sim_url,
                rate_budget="off",
                celery_rate_limit=per_worker,
                verify_delay_s=0.5,
                capsule_job_key_field="",
                max_attempts=1000,
            ),
            jobs,
            args.limit,
            args.window_s,
        )
    rows: list[tuple[str, Any]] = [
        (
            "window",
            f"{args.limit} requests per {args.window_s:g} s "
            f"({allowed_per_s:g}/s allowed)",
        ),
        ("workers", f"{WORKERS} processes x {THREADS} threads"),
        ("jobs (2 requests each)", jobs),
    ]
    for name, result in (
        ("shared budget", shared),
        (f"Celery rate_limit {per_worker}", plain),
    ):
        rows += [
            (
                f"{name}: accepted/allowed",
                f"{result['accepted_per_s'] / allowed_per_s:.3f}",
            ),
            (f"{name}: 429s", result["rate_429"]),
            (f"{name}: jobs/s", f"{result['jobs_per_s']:.2f}"),
            (f"{name}: most accepted in one window", result["max_window"]),
            (f"{name}: final states", result["states"]),
        ]
    report("shared rate budget vs Celery rate_limit", rows, args.json)


if __name__ == "__main__":
    main()
