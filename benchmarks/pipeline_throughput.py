"""End-to-end throughput of the pipeline against bare HTTP, in one run.

Runs every valid deal of the bundled data set through one Celery worker
against the simulator (no injected latency, a rate window too large to
bind), then sends the same Capsule requests from a plain httpx loop at the
same concurrency. The ratio of the two is what the queue, the ledger and
the rate budget cost.

    python benchmarks/pipeline_throughput.py [--concurrency 16] [--jobs N]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import httpx

from benchmarks.common import (
    TOKEN,
    bench_settings,
    report,
    sim_admin,
    simulator,
    wait_until,
    workers,
)
from worker.celery_app import create_app
from worker.connections import connect_redis
from worker.dataset import sales_pipeline_jobs
from worker.errors import JobInvalid
from worker.job import Job, parse_job
from worker.ledger import Ledger
from worker.producer import Producer

WORK_ROUTES = (
    "POST /opportunities",
    "GET /opportunities/{ids}",
    "PUT /opportunities/{id}",
)


def valid_jobs(limit: int | None) -> list[Job]:
    """Return the data set's valid jobs (the ones a worker would create)."""
    jobs = []
    for _, data in sales_pipeline_jobs():
        try:
            jobs.append(parse_job(data))
        except JobInvalid:
            continue
    return jobs[:limit]


def run_pipeline(
    sim_url: str, jobs: list[Job], pool: str, concurrency: int
) -> dict[str, Any]:
    """Time the jobs through a real worker, from first enqueue to last finish."""
    settings = bench_settings(sim_url)
    client = connect_redis(settings.redis_url)
    ledger = Ledger(client, settings.key_prefix)
    producer = Producer(ledger, create_app(settings), settings.key_prefix)
    sim_admin(sim_url, "POST", "reset")
    with workers(settings, 1, pool, concurrency):
        started = time.monotonic()
        producer.submit_all((n, job.canonical()) for n, job in enumerate(jobs, 1))
        wait_until(lambda: ledger.active_count() == 0, 3600, "the jobs to finish")
        elapsed_s = time.monotonic() - started
    stats = sim_admin(sim_url, "GET", "stats")
    counts = ledger.state_counts()
    for key in client.scan_iter(f"{settings.key_prefix}:*", count=1000):
        client.unlink(key)
    return {"elapsed_s": elapsed_s, "stats": stats, "counts": counts}


def run_bare(sim_url: str, jobs: list[Job], concurrency: int, repairs: int) -> float:
    """Time the same creates and reads (and the same number of repairs) sent
    by a plain httpx thread pool, ids resolved beforehand."""
    ids = directory_ids(sim_url)
    work: Queue[tuple[int, Job]] = Queue()
    for n, job in enumerate(jobs):
        work.put((n, job))
    sim_admin(sim_url, "POST", "reset")
    threads = [
        threading.Thread(target=bare_worker, args=(sim_url, work, ids, repairs))
        for _ in range(concurrency)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def bare_worker(
    sim_url: str, work: Queue[tuple[int, Job]], ids: dict[str, int], repairs: int
) -> None:
    """Create, read, and for the first ``repairs`` jobs repair and re-read."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(
        base_url=f"{sim_url}/api/v2", headers=headers, timeout=30
    ) as http:
        for n, job in drain(work):
            body = {
                "opportunity": {
                    "name": job.name,
                    "party": {"id": ids[f"party:{job.party.name}"]},  # type: ignore[union-attr]
                    "milestone": {"id": ids[f"milestone:{job.milestone.name}"]},  # type: ignore[union-attr]
                    "owner": {"id": ids[f"user:{job.owner.name}"]},  # type: ignore[union-attr]
                }
            }
            created = http.post("opportunities", json=body).json()["opportunity"]
            http.get(f"opportunities/{created['id']}")
            if n < repairs:
                http.put(
                    f"opportunities/{created['id']}",
                    json={"opportunity": {"owner": body["opportunity"]["owner"]}},
                )
                http.get(f"opportunities/{created['id']}")


def drain(work: Queue[tuple[int, Job]]) -> Iterator[tuple[int, Job]]:
    """Yield items until the queue is empty."""
    while True:
        try:
            yield work.get_nowait()
        except Empty:
            return


def directory_ids(sim_url: str) -> dict[str, int]:
    """Return name -> id for parties, milestones and users of the simulator."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    ids: dict[str, int] = {}
    with httpx.Client(base_url=f"{sim_url}/api/v2", headers=headers) as http:
        for page in (1, 2):
            for party in http.get(
                "parties", params={"page": page, "perPage": 100}
            ).json()["parties"]:
                ids[f"party:{party['name']}"] = party["id"]
        for user in http.get("users", params={"perPage": 100}).json()["users"]:
            ids[f"user:{user['name']}"] = user["id"]
        pipeline = http.get("pipelines").json()["pipelines"][0]
        for milestone in http.get(f"pipelines/{pipeline['id']}/milestones").json()[
            "milestones"
        ]:
            ids[f"milestone:{milestone['name']}"] = milestone["id"]
    return ids


def main() -> None:
    """Run both measurements and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pool", default="threads")
    parser.add_argument(
        "--jobs", type=int, default=None, help="limit the number of jobs"
    )
    parser.add_argument("--json", type=Path, default=None, help="save figures here")
    args = parser.parse_args()
    jobs = valid_jobs(args.jobs)
    with (
        tempfile.TemporaryDirectory() as folder,
        simulator(Path(folder), "--limit", "1000000", "--window-s", "3600") as sim_url,
    ):
        pipeline = run_pipeline(sim_url, jobs, args.pool, args.concurrency)
        repairs = pipeline["counts"].get("repaired", 0)
        bare_s = run_bare(sim_url, jobs, args.concurrency, repairs)
    routes = pipeline["stats"]["byRoute"]
    work = sum(routes.get(r, 0) for r in WORK_ROUTES)
    lookups = pipeline["stats"]["requests"] - work
    pipeline_rate = len(jobs) / pipeline["elapsed_s"]
    bare_rate = len(jobs) / bare_s
    verified = pipeline["counts"].get("verified", 0)
    report(
        "oppsync pipeline vs bare httpx",
        [
            ("jobs", len(jobs)),
            ("worker", f"1 process, pool {args.pool}, concurrency {args.concurrency}"),
            ("final states", pipeline["counts"]),
            ("pipeline jobs/s", f"{pipeline_rate:.1f}"),
            ("bare httpx jobs/s", f"{bare_rate:.1f}"),
            ("ratio pipeline / bare", f"{pipeline_rate / bare_rate:.2f}"),
            (
                "Capsule requests per job",
                f"{work / len(jobs):.3f} (+ {lookups} cached lookups)",
            ),
            ("requests per verified job", "2 expected"),
            ("requests per repaired job", "4 expected"),
            (
                "measured (2*verified+4*repaired)/jobs",
                f"{(2 * verified + 4 * repairs) / len(jobs):.3f}",
            ),
        ],
        args.json,
    )


if __name__ == "__main__":
    main()
