"""Helpers shared by the benchmark scripts: processes, timing, reporting."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from worker.celery_app import worker_command
from worker.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "demo-token"


def machine() -> str:
    """Describe the machine the figures come from."""
    return (
        f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str) -> None:
    """Poll ``condition`` until truthy; raise at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.05)


@contextmanager
def simulator(workdir: Path, *args: str) -> Iterator[str]:
    """Run the dataset-seeded simulator; yield its base URL."""
    port_file = workdir / f"sim-{uuid.uuid4().hex[:6]}.port"
    command = [
        sys.executable,
        "-m",
        "worker.simulator",
        "--dataset",
        str(REPO_ROOT / "worker" / "data"),
        "--token",
        TOKEN,
        "--port",
        "0",
        "--port-file",
        str(port_file),
        *args,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(
            lambda: port_file.exists() and port_file.read_text().strip(),
            30,
            "the simulator",
        )
        yield f"http://127.0.0.1:{int(port_file.read_text())}"
    finally:
        process.terminate()
        process.wait(10)


def sim_admin(url: str, method: str, path: str, body: Any = None) -> Any:
    """Call a simulator control endpoint."""
    response = httpx.request(method, f"{url}/_sim/{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json() if response.content else None


def bench_settings(sim_url: str, **overrides: Any) -> Settings:
    """Settings for benchmark workers under a fresh key prefix."""
    options: dict[str, Any] = {
        "capsule_api_url": f"{sim_url}/api/v2",
        "capsule_api_token": TOKEN,
        "capsule_job_key_field": "oppsync job key",
        "key_prefix": f"oppsync-bench-{uuid.uuid4().hex[:6]}",
        "log_level": "WARNING",
        "log_format": "json",
        **overrides,
    }
    return Settings.from_env().with_overrides(**options)


@contextmanager
def workers(
    settings: Settings,
    count: int,
    pool: str,
    concurrency: int,
    extra_env: dict[str, str] | None = None,
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Run ``count`` Celery worker processes; yield them once all are ready."""
    folder = Path(tempfile.mkdtemp(prefix="oppsync-bench-"))
    processes = []
    for n in range(count):
        ready = folder / f"w{n}.ready"
        env = {
            **os.environ,
            **settings.to_env(),
            "OPPSYNC_READY_FILE": str(ready),
            **(extra_env or {}),
        }
        command = worker_command(
            settings.key_prefix,
            pool=pool,
            concurrency=concurrency,
            hostname=f"bench{n}-{settings.key_prefix}@%h",
            loglevel="WARNING",
        )
        log = (folder / f"w{n}.log").open("wb")
        processes.append(
            subprocess.Popen(
                command, env=env, stdout=log, stderr=log, start_new_session=True
            )
        )
        wait_until(ready.exists, 60, f"worker {n}")
    try:
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)


def report(
    title: str, rows: list[tuple[str, Any]], out_json: Path | None = None
) -> None:
    """Print a small table and optionally save the figures as JSON."""
    print(f"\n{title}  ({machine()})")
    width = max(len(label) for label, _ in rows) + 2
    for label, value in rows:
        print(f"  {label:<{width}}{value}")
    if out_json is not None:
        out_json.write_text(json.dumps(dict(rows), indent=2, default=str))
