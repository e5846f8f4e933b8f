"""Chaos run: thousands of jobs through two workers while everything fails.

Injects at once: 5% 503 answers on every Capsule request, 2% creates that
commit but answer after the read timeout, 2% creates that commit but answer
502, a SIGKILL of one whole worker every ``--kill-every-s`` seconds (its
supervisor starts a new one), and one restart of Redis (append-only
persistence on). Then reports, per job key, what the simulator created.
Duplicates and lost jobs must be 0.

    python -m benchmarks.chaos [--jobs 3000] [--kill-every-s 20]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from benchmarks.common import report, sim_admin, simulator
from benchmarks.pipeline_throughput import valid_jobs
from tests.support import PersistentRedis, Worker, marker_of
from worker.celery_app import create_app
from worker.connections import connect_redis
from worker.ledger import TERMINAL_STATES, Ledger
from worker.producer import Producer
from worker.settings import Settings

#: Bounds short enough for recovery to show within minutes.
CHAOS_BOUNDS = {
    "visibility_timeout_s": 60,
    "max_countdown_s": 10.0,
    "task_time_limit_s": 15,
    "lease_s": 8,
    "request_deadline_s": 5.0,
    "read_timeout_s": 2.0,
    "backoff_min_s": 0.5,
    "backoff_max_s": 5.0,
    "max_attempts": 12,
    "sweep_interval_s": 2.0,
    "sweep_stale_s": 30.0,
    "log_level": "WARNING",
}
FAULTS = [
    {"kind": "error", "status": 503, "rate": 0.05},
    {
        "kind": "commit_late",
        "method": "POST",
        "path": "/opportunities",
        "rate": 0.02,
        "delay_s": 3.0,
    },
    {"kind": "commit_502", "method": "POST", "path": "/opportunities", "rate": 0.02},
]


def main() -> None:
    """Run the chaos scenario and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--kill-every-s", type=float, default=20.0)
    parser.add_argument("--timeout-s", type=float, default=1800.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    jobs = valid_jobs(args.jobs)
    with (
        tempfile.TemporaryDirectory() as folder,
        simulator(Path(folder), "--limit", "1000000") as sim_url,
    ):
        rows = run(Path(folder), sim_url, jobs, args.kill_every_s, args.timeout_s)
    report("oppsync chaos run", rows, args.json)


def run(
    folder: Path, sim_url: str, jobs: list, kill_every_s: float, timeout_s: float
) -> list[tuple[str, object]]:
    """Drive the scenario; return the report rows."""
    server = PersistentRedis(folder)
    server.start()
    settings = Settings.from_env().with_overrides(
        redis_url=server.url,
        capsule_api_url=f"{sim_url}/api/v2",
        capsule_api_token="demo-token",
        capsule_job_key_field="oppsync job key",
        key_prefix="oppsync-chaos",
        **CHAOS_BOUNDS,
    )
    ledger = Ledger(connect_redis(server.url), settings.key_prefix)
    producer = Producer(
        ledger,
        create_app(settings),
        settings.key_prefix,
        settings.capsule_job_key_field,
    )
    sim_admin(sim_url, "PUT", "faults", {"faults": FAULTS, "seed": 11})
    workers = [
        Worker(settings, folder, f"chaos{n}").start(
            pool="prefork", concurrency=2, beat=(n == 0), supervise=True
        )
        for n in (0, 1)
    ]
    started = time.monotonic()
    accepted = producer.submit_all((n, j.canonical()) for n, j in enumerate(jobs, 1))
    stop = threading.Event()
    killer = threading.Thread(target=kill_in_turn, args=(workers, kill_every_s, stop))
    killer.start()
    try:
        drained, redis_restarts = drain(ledger, server, started, timeout_s)
    finally:
        stop.set()
        killer.join()
        for worker in workers:
            worker.kill()
        server.stop()
    drain_s = time.monotonic() - started
    server.start()
    try:
        rows = figures(ledger, sim_url, accepted.keys, drained, drain_s, workers)
        return [*rows, ("Redis restarts", redis_restarts)]
    finally:
        server.stop()


def kill_in_turn(workers: list[Worker], every_s: float, stop: threading.Event) -> None:
    """SIGKILL the workers one after the other (supervisors restart them)."""
    turn = 0
    while not stop.wait(every_s):
        process = workers[turn % len(workers)].process
        if process is not None and process.poll() is None:
            import os
            import signal

            os.killpg(process.pid, signal.SIGKILL)
        turn += 1


def drain(
    ledger: Ledger, server: PersistentRedis, started: float, timeout_s: float
) -> bool:
    """Wait for every job to finish, restarting Redis once a third of the way.

    Returns whether every job finished, and how often Redis was restarted.
    """
    restarted = 0
    total = None
    while time.monotonic() - started < timeout_s:
        try:
            active = ledger.active_count()
            total = total or active
        except Exception:
            time.sleep(0.5)
            continue
        if active == 0:
            return True, restarted
        if not restarted and total and active < total * 2 / 3:
            server.stop()
            time.sleep(1.0)  # the outage itself
            server.start()
            restarted += 1
        time.sleep(0.5)
    return False, restarted


def marker_field_id(sim_url: str) -> int:
    """Return the id of the simulator's job-key field."""
    headers = {"Authorization": "Bearer demo-token"}
    body = httpx.get(
        f"{sim_url}/api/v2/opportunities/fields/definitions",
        headers=headers,
        timeout=10,
    ).json()
    return next(
        int(d["id"]) for d in body["definitions"] if d["name"] == "oppsync job key"
    )


def figures(
    ledger: Ledger,
    sim_url: str,
    keys: list[str],
    drained: bool,
    drain_s: float,
    workers: list[Worker],
) -> list[tuple[str, object]]:
    """Compare the ledger with what the simulator holds, per job key."""
    field_id = marker_field_id(sim_url)
    everything = sim_admin(sim_url, "GET", "opportunities")["opportunities"]
    per_key = Counter(
        k for o in everything if (k := marker_of(o, field_id)) is not None
    )
    states = {k: (r.state if (r := ledger.get(k)) else "missing") for k in keys}
    dead = Counter(
        ledger.dead_letter(k).get("reason", "?")
        for k, s in states.items()
        if s == "dead"
    )
    lost = [
        k
        for k, s in states.items()
        if s not in TERMINAL_STATES
        or (s in ("verified", "repaired") and per_key[k] != 1)
    ]
    stats = sim_admin(sim_url, "GET", "stats")
    return [
        ("jobs accepted", len(keys)),
        ("opportunities created", sum(per_key[k] for k in keys)),
        ("duplicates (extra opportunities)", sum(max(per_key[k] - 1, 0) for k in keys)),
        ("jobs lost", len(lost)),
        ("final states", dict(Counter(states.values()))),
        ("dead by reason", dict(dead) or "none"),
        ("faults fired", stats.get("faultsFired")),
        ("worker restarts after SIGKILL or stall", sum(w.restarts for w in workers)),
        ("drained", drained),
        ("time to drain", f"{drain_s:.1f} s"),
    ]


if __name__ == "__main__":
    main()
