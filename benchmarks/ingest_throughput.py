"""Enqueue throughput over HTTP against the in-process producer, in one run.

The baseline validates and enqueues the bundled deals with
``Producer.submit_all`` in this process (what ``oppsync enqueue`` does).
The same jobs are then posted to ``oppsync serve`` on a loopback port:
in batches of 100 over one keep-alive connection, and one job per request
from several client threads. Each run has its own key prefix and queue; no
worker consumes, so only the door is measured.

    python -m benchmarks.ingest_throughput [--jobs 5000] [--clients 4]
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import report
from tests.support import serving
from worker.connections import connect_redis
from worker.dataset import sales_pipeline_jobs
from worker.errors import JobInvalid
from worker.job import parse_job
from worker.ledger import Ledger
from worker.producer import Producer
from worker.settings import Settings

TOKEN = "bench-ingest-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BATCH = 100


def main() -> None:
    """Measure the three ways in and print the ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--port", type=int, default=18_480)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    jobs = valid_jobs(args.jobs)
    base = Settings.from_env().with_overrides(
        ingest_tokens=TOKEN, ingest_port=args.port, log_level="WARNING"
    )
    prefixes = [f"oppsync-bench-ingest-{n}-{os.getpid()}" for n in range(3)]
    try:
        direct_s = time_direct(base.with_overrides(key_prefix=prefixes[0]), jobs)
        batch_s = time_http(base.with_overrides(key_prefix=prefixes[1]), jobs, 1)
        single_s = time_http(
            base.with_overrides(key_prefix=prefixes[2]), jobs, args.clients
        )
    finally:
        wipe(base, prefixes)

    count = len(jobs)
    report(
        f"Ingest throughput, {count} jobs",
        [
            ("in-process producer (baseline)", f"{count / direct_s:.0f} jobs/s"),
            (f"HTTP, batches of {BATCH}", f"{count / batch_s:.0f} jobs/s"),
            (
                f"HTTP, one job per request, {args.clients} clients",
                f"{count / single_s:.0f} jobs/s",
            ),
            ("ratio batches / baseline", f"{direct_s / batch_s:.2f}"),
            ("ratio single / baseline", f"{direct_s / single_s:.2f}"),
        ],
        args.json,
    )


def valid_jobs(limit: int) -> list[dict[str, Any]]:
    """Return up to ``limit`` valid jobs of the bundled data set."""
    jobs = []
    for _, data in sales_pipeline_jobs():
        try:
            parse_job(data)
        except (JobInvalid, TypeError):
            continue
        jobs.append(data)
        if len(jobs) == limit:
            break
    return jobs


def time_direct(settings: Settings, jobs: list[dict[str, Any]]) -> float:
    """Seconds for the in-process producer to enqueue ``jobs``."""
    ledger = Ledger(connect_redis(settings.redis_url), settings.key_prefix)
    producer = Producer.for_settings(settings, ledger)
    started = time.perf_counter()
    report_ = producer.submit_all(enumerate(jobs, start=1))
    elapsed = time.perf_counter() - started
    assert report_.enqueued == len(jobs), report_.refusals[:3]
    return elapsed


def time_http(settings: Settings, jobs: list[dict[str, Any]], clients: int) -> float:
    """Seconds to post ``jobs`` to a fresh ``oppsync serve``: in batches over
    one connection (``clients`` == 1), else singly from ``clients`` threads."""
    with serving(settings) as url:
        started = time.perf_counter()
        if clients == 1:
            enqueued = post_batches(url, jobs)
        else:
            enqueued = post_singly(url, jobs, clients)
        elapsed = time.perf_counter() - started
    assert enqueued == len(jobs), enqueued
    return elapsed


def post_batches(url: str, jobs: list[dict[str, Any]]) -> int:
    """Post ``jobs`` in batches; return how many were enqueued."""
    enqueued = 0
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
        for start in range(0, len(jobs), BATCH):
            response = client.post("/v1/jobs", json=jobs[start : start + BATCH])
            enqueued += int(response.json()["enqueued"])
    return enqueued


def post_singly(url: str, jobs: list[dict[str, Any]], clients: int) -> int:
    """Post one job per request from ``clients`` threads."""
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:

        def post(job: dict[str, Any]) -> int:
            return int(client.post("/v1/jobs", json=job).json()["enqueued"])

        with ThreadPoolExecutor(clients) as pool:
            return sum(pool.map(post, jobs))


def wipe(settings: Settings, prefixes: list[str]) -> None:
    """Remove the benchmark's keys (and only those)."""
    client = connect_redis(settings.redis_url)
    for prefix in prefixes:
        keys = list(client.scan_iter(f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.unlink(*keys[start : start + 500])


if __name__ == "__main__":
    main()
