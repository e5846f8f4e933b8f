"""``oppsync demo``: the real pipeline on the bundled CRM data set.

It starts the Capsule simulator seeded from the data set, a Celery worker,
turns every deal of ``sales_pipeline.csv`` into a job by name, enqueues them
(twice, to show the second pass creates nothing), shows progress, and ends
with a summary. Its state lives under its own key prefix in Redis and is
wiped at the start of every run, so it can be run again and again without
touching real jobs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx
import redis

from worker.celery_app import worker_command
from worker.connections import connect_redis, redacted
from worker.dataset import DATA_DIR, sales_pipeline_jobs
from worker.ledger import STATES, TERMINAL_STATES, Ledger
from worker.producer import EnqueueReport, Producer
from worker.settings import Settings

#: Key prefix (and queue name) that keeps the demo apart from real jobs.
DEMO_PREFIX = "oppsync-demo"
#: Token the simulator's dataset seed accepts.
DEMO_TOKEN = "demo-token"
#: The simulator's text field that carries the job key.
MARKER_FIELD = "oppsync job key"
#: Seconds between progress lines.
PROGRESS_EVERY_S = 3.0


class DemoError(Exception):
    """The demo cannot run; the message says what to do."""


@dataclass
class DemoOptions:
    """Knobs of the demo run.

    Attributes:
        limit: simulator requests per rate window (per Capsule user).
        window_s: simulator rate window, in seconds.
        concurrency: worker processes (prefork pool).
        timeout_s: give up waiting for the jobs after this long.
    """

    limit: int = 6_000
    window_s: float = 30.0
    concurrency: int = 4
    timeout_s: float = 1800.0


def run_demo(settings: Settings, options: DemoOptions, out: TextIO) -> int:
    """Run the demo end to end; returns the exit code (0 when all finished)."""
    started = time.monotonic()
    try:
        with ExitStack() as stack:
            redis_url = stack.enter_context(_redis_for_demo(settings, out))
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="oppsync-demo-"))
            )
            sim_url = stack.enter_context(_simulator(options, workdir, out))
            demo = settings.with_overrides(
                redis_url=redis_url,
                key_prefix=DEMO_PREFIX,
                capsule_api_url=f"{sim_url}/api/v2",
                capsule_api_token=DEMO_TOKEN,
                capsule_job_key_field=MARKER_FIELD,
            )
            client = connect_redis(redis_url)
            _wipe(client, DEMO_PREFIX)
            stack.enter_context(_worker(demo, options, workdir, out))
            return _drive(demo, client, sim_url, options, started, out)
    except DemoError as exc:
        print(f"oppsync demo: {exc}", file=sys.stderr)
        return 2


def _drive(
    settings: Settings,
    client: redis.Redis,
    sim_url: str,
    options: DemoOptions,
    started: float,
    out: TextIO,
) -> int:
    ledger = Ledger(client, settings.key_prefix)
    producer = Producer.for_settings(settings, ledger)
    first = producer.submit_all(sales_pipeline_jobs(DATA_DIR))
    print(
        f"enqueued {first.enqueued} jobs, refused {first.refused} "
        f"(rows {first.enqueued + first.duplicates + first.refused})",
        file=out,
    )
    second = producer.submit_all(sales_pipeline_jobs(DATA_DIR))
    print(
        f"enqueued the same file again: {second.enqueued} new, "
        f"{second.duplicates} duplicates",
        file=out,
    )
    finished = _wait(ledger, sim_url, options.timeout_s, out)
    _summary(
        ledger,
        client,
        settings,
        first,
        second,
        sim_url,
        time.monotonic() - started,
        out,
    )
    return 0 if finished else 1


def _wait(ledger: Ledger, sim_url: str, timeout_s: float, out: TextIO) -> bool:
    deadline = time.monotonic() + timeout_s
    started = time.monotonic()
    last = 0.0
    while ledger.active_count() > 0:
        if time.monotonic() > deadline:
            print(f"timed out with {ledger.active_count()} jobs unfinished", file=out)
            return False
        if time.monotonic() - last >= PROGRESS_EVERY_S:
            last = time.monotonic()
            counts = ledger.state_counts()
            states = "  ".join(
                f"{s} {counts.get(s, 0)}" for s in STATES if counts.get(s)
            )
            requests = _sim_stats(sim_url).get("requests", "?")
            print(
                f"{last - started:6.1f} s  {states}  | Capsule requests {requests}",
                file=out,
                flush=True,
            )
        time.sleep(0.25)
    return True


def _summary(
    ledger: Ledger,
    client: redis.Redis,
    settings: Settings,
    first: EnqueueReport,
    second: EnqueueReport,
    sim_url: str,
    elapsed_s: float,
    out: TextIO,
) -> None:
    counts = ledger.state_counts()
    stats = _sim_stats(sim_url)
    refusals = Counter(f"{r.field}: {r.message}" for r in first.refusals)
    dead = Counter(ledger.dead_letter(k).get("reason", "?") for k in ledger.dead_keys())
    rows: list[tuple[str, Any]] = [("Jobs by final state", "")]
    rows += [(f"  {s}", counts.get(s, 0)) for s in STATES if s in TERMINAL_STATES]
    rows += [("Refused at enqueue", first.refused)]
    rows += [(f"  {reason}", n) for reason, n in refusals.most_common()]
    rows += [("Dead letters by reason", sum(dead.values()))]
    rows += [(f"  {reason}", n) for reason, n in dead.most_common()]
    rows += [
        (
            "Second enqueue of the same file",
            f"{second.enqueued} new, {second.duplicates} duplicates",
        )
    ]
    rows += [("Capsule requests (simulator)", stats.get("requests", "?"))]
    rows += [(f"  {route}", n) for route, n in sorted(stats.get("byRoute", {}).items())]
    rows += [("  answered 429", stats.get("byStatus", {}).get("429", 0))]
    rows += [("Opportunities in the simulator", stats.get("opportunities", "?"))]
    rows += [("Elapsed", f"{elapsed_s:.1f} s")]
    width = max(len(label) for label, _ in rows) + 2
    print("", file=out)
    for label, value in rows:
        print(f"{label:<{width}}{value}", file=out)


def _sim_stats(sim_url: str) -> dict[str, Any]:
    try:
        stats: dict[str, Any] = httpx.get(f"{sim_url}/_sim/stats", timeout=5).json()
    except httpx.HTTPError:
        return {}
    return stats


def _wipe(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.unlink(*keys[start : start + 1000])


@contextmanager
def _redis_for_demo(settings: Settings, out: TextIO) -> Iterator[str]:
    """Yield a Redis URL: ``REDIS_URL``, the local default, or a private
    ``redis-server`` started for this run when nothing answers."""
    url = settings.redis_url
    if _answers(url):
        print(f"Redis: {redacted(url)} (demo keys under '{DEMO_PREFIX}:')", file=out)
        yield url
        return
    binary = shutil.which("redis-server")
    if "REDIS_URL" in os.environ or binary is None:
        raise DemoError(
            f"no Redis answers at {redacted(url)}. Start one (for example "
            "`redis-server --daemonize yes`, or `docker compose up -d redis`) "
            "or set REDIS_URL to a Redis you can use."
        )
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="oppsync-redis-") as folder:
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                folder,
            ],
            stdout=subprocess.DEVNULL,
        )
        private = f"redis://127.0.0.1:{port}/0"
        try:
            _await(lambda: _answers(private), 10.0, "the private redis-server to start")
            print(
                f"Redis: nothing at {redacted(url)}; started a private redis-server "
                f"on port {port} for this run",
                file=out,
            )
            yield private
        finally:
            process.terminate()
            process.wait(10)


@contextmanager
def _simulator(options: DemoOptions, workdir: Path, out: TextIO) -> Iterator[str]:
    port_file = workdir / "simulator.port"
    command = [
        sys.executable,
        "-m",
        "worker.simulator",
        "--dataset",
        str(DATA_DIR),
        "--port",
        "0",
        "--port-file",
        str(port_file),
        "--token",
        DEMO_TOKEN,
        "--limit",
        str(options.limit),
        "--window-s",
        str(options.window_s),
    ]
    with (workdir / "simulator.log").open("w") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            _await(
                lambda: port_file.exists() and port_file.read_text().strip() != "",
                30.0,
                "the Capsule simulator to start",
                process,
            )
            url = f"http://127.0.0.1:{int(port_file.read_text())}"
            print(
                f"Capsule simulator: {url}/api/v2, seeded from the CRM data set; "
                f"rate window {options.limit} requests per {options.window_s:g} s",
                file=out,
            )
            yield url
        finally:
            process.terminate()
            process.wait(10)


@contextmanager
def _worker(
    settings: Settings, options: DemoOptions, workdir: Path, out: TextIO
) -> Iterator[None]:
    log_path = workdir / "worker.log"
    command = worker_command(
        settings.key_prefix,
        concurrency=options.concurrency,
        hostname="oppsync-demo@%h",
        loglevel="WARNING",
    )
    env = {**os.environ, **settings.to_env(), "OPPSYNC_LOG_FORMAT": "json"}
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=env
        )
        print(
            f"Celery worker: {options.concurrency} processes, pid {process.pid}",
            file=out,
        )
        try:
            yield
        finally:
            process.terminate()
            process.wait(30)
            _keep_log(log_path, out)


def _keep_log(log_path: Path, out: TextIO) -> None:
    kept = Path(tempfile.gettempdir()) / "oppsync-demo-worker.log"
    shutil.copyfile(log_path, kept)
    print(f"worker log: {kept}", file=out)


def _answers(url: str) -> bool:
    try:
        return bool(connect_redis(url).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def _await(
    condition: Any,
    timeout_s: float,
    what: str,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process is not None and process.poll() is not None:
            raise DemoError(
                f"gave up waiting for {what}: it exited with {process.returncode}"
            )
        if time.monotonic() > deadline:
            raise DemoError(f"gave up waiting for {what} after {timeout_s:g} s")
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
