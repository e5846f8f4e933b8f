"""Real processes for tests and benchmarks: the simulator and Celery workers.

Nothing here mocks anything: the simulator is a uvicorn server on a free
loopback port, workers are ``celery -A worker worker`` processes, and Redis
is the one at ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``), with a
key prefix of its own per test session so runs never meet.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis

from worker.celery_app import worker_command
from worker.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-token"
SECOND_TOKEN = "test-token-second"
T = TypeVar("T")

API_USER, ANN, BOB, CAT = 9, 1, 2, 3
EAST, WEST, DESK = 10, 11, 12
ACME, BETA = 100, 101
PROSPECTING, ENGAGING, WON = 30, 31, 33
JOB_KEY_FIELD = 50

SEED: dict[str, Any] = {
    "users": [
        {"id": API_USER, "username": "api", "name": "API User"},
        {"id": ANN, "username": "ann", "name": "Ann Lee"},
        {"id": BOB, "username": "bob", "name": "Bob Ray"},
        {"id": CAT, "username": "cat", "name": "Cat Fox"},
    ],
    "teams": [
        {"id": EAST, "name": "East", "members": [ANN, BOB]},
        {"id": WEST, "name": "West", "members": [CAT]},
        {"id": DESK, "name": "Desk", "members": [API_USER]},
    ],
    "parties": [
        {"id": ACME, "type": "organisation", "name": "Acme Corporation"},
        {"id": BETA, "type": "organisation", "name": "Betatech"},
    ],
    "pipelines": [
        {
            "id": 20,
            "name": "Sales",
            "milestones": [
                {"id": PROSPECTING, "name": "Prospecting", "probability": 10},
                {"id": ENGAGING, "name": "Engaging", "probability": 30},
                {"id": WON, "name": "Won", "probability": 100, "complete": True},
            ],
        }
    ],
    "fieldDefinitions": [{"id": JOB_KEY_FIELD, "name": "job key", "type": "text"}],
    "automations": [
        {
            "milestone": ENGAGING,
            "assignTeam": DESK,
            "clearOwner": True,
            "timing": "delayed",
            "delay_s": 0.2,
        }
    ],
    "tokens": {
        TOKEN: {"user": API_USER, "scope": "write"},
        SECOND_TOKEN: {"user": ANN, "scope": "write"},
    },
}


def wait_for(condition: Callable[[], T], timeout_s: float = 30.0, what: str = "") -> T:
    """Poll ``condition`` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"gave up after {timeout_s:g} s waiting for {what or condition}"
            )
        time.sleep(0.05)


class Simulator:
    """A simulator process and a client for its ``/_sim`` control endpoints."""

    def __init__(self, workdir: Path, seed: dict[str, Any] | None = None) -> None:
        self._workdir = workdir
        self._seed = seed or SEED
        self._process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, *extra: str) -> Simulator:
        """Start the server and wait until it accepts connections."""
        seed_path = self._workdir / "seed.json"
        port_file = self._workdir / "simulator.port"
        seed_path.write_text(json.dumps(self._seed))
        port_file.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "worker.simulator",
            "--seed",
            str(seed_path),
            "--port",
            "0",
            "--port-file",
            str(port_file),
            *extra,
        ]
        log = (self._workdir / "simulator.log").open("ab")
        self._process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=log)
        wait_for(
            lambda: port_file.exists() and port_file.read_text().strip(),
            30,
            "the simulator to start",
        )
        self.url = f"http://127.0.0.1:{int(port_file.read_text())}"
        return self

    def stop(self) -> None:
        """Stop the server."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)

    @property
    def api_url(self) -> str:
        """Base URL of the simulated Capsule API."""
        return f"{self.url}/api/v2"

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call a control endpoint and return its JSON answer."""
        response = httpx.request(
            method, f"{self.url}/_sim/{path}", json=body, timeout=10
        )
        response.raise_for_status()
        # Decimals keep amounts exactly as the simulator wrote them.
        return (
            json.loads(response.text, parse_float=Decimal) if response.content else None
        )

    def faults(self, *faults: dict[str, Any]) -> None:
        """Replace the injected faults."""
        self.admin("PUT", "faults", {"faults": list(faults), "seed": 7})

    def stats(self) -> dict[str, Any]:
        """Return the request counters."""
        result: dict[str, Any] = self.admin("GET", "stats")
        return result

    def opportunities(self) -> list[dict[str, Any]]:
        """Return every opportunity the simulator holds."""
        body = self.admin("GET", "opportunities")
        items: list[dict[str, Any]] = (
            body["opportunities"] if isinstance(body, dict) else body
        )
        return items

    def opportunities_for(self, key: str) -> list[dict[str, Any]]:
        """Return the opportunities whose job-key field holds ``key``."""
        return [o for o in self.opportunities() if marker_of(o) == key]


def marker_of(opportunity: dict[str, Any], field_id: int = JOB_KEY_FIELD) -> str | None:
    """Return the job key written into an opportunity's marker field."""
    for item in opportunity.get("fields", []):
        if item.get("definition", {}).get("id") == field_id:
            return str(item.get("value"))
    return None


#: Key prefixes handed out in this test session, wiped at its end.
SESSION_PREFIXES: list[str] = []


def queue_key(settings: Settings) -> str:
    """Return the Redis list that holds the settings' waiting task messages."""
    return f"{settings.key_prefix}:celery:{settings.key_prefix}"


def settings_for(sim: Simulator, **overrides: Any) -> Settings:
    """Settings for a worker against ``sim`` under a fresh key prefix."""
    base = Settings.from_env().with_overrides(
        capsule_api_url=sim.api_url,
        capsule_api_token=TOKEN,
        capsule_job_key_field="job key",
        key_prefix=f"oppsync-test-{uuid.uuid4().hex[:8]}",
        verify_delay_s=0.3,
        backoff_min_s=0.2,
        backoff_max_s=1.0,
        read_timeout_s=2.0,
        request_deadline_s=4.0,
        lease_s=10,
        log_format="json",
    )
    settings = base.with_overrides(**overrides)
    SESSION_PREFIXES.append(settings.key_prefix)
    return settings


class Worker:
    """A ``celery -A worker worker`` process with the given settings."""

    def __init__(self, settings: Settings, workdir: Path, name: str = "w1") -> None:
        self.settings = settings
        self._log_path = workdir / f"worker-{name}.log"
        self._name = name
        self.process: subprocess.Popen[bytes] | None = None
        self._options: tuple[str, int, bool] = ("threads", 4, False)
        self._stopping = False
        self.restarts = 0

    def start(
        self,
        pool: str = "threads",
        concurrency: int = 4,
        beat: bool = False,
        supervise: bool = False,
    ) -> Worker:
        """Start the worker and wait until it consumes from its queue.

        With ``supervise``, a thread starts it again whenever it exits on its
        own, as compose's restart policy or systemd would.
        """
        self._options = (pool, concurrency, beat)
        self._launch()
        if supervise:
            threading.Thread(target=self._supervise, daemon=True).start()
        return self

    def _supervise(self) -> None:
        while not self._stopping:
            if self.process is not None and self.process.poll() is not None:
                self.restarts += 1
                self._launch()
            time.sleep(0.2)

    def _launch(self) -> None:
        pool, concurrency, beat = self._options
        ready = self._log_path.with_suffix(".ready")
        ready.unlink(missing_ok=True)
        command = worker_command(
            self.settings.key_prefix,
            pool=pool,
            concurrency=concurrency,
            hostname=f"{self._name}-{self.settings.key_prefix}@%h",
            beat_schedule=str(self._log_path.with_suffix(".beat")) if beat else None,
        )
        env = {**os.environ, **self.settings.to_env(), "OPPSYNC_READY_FILE": str(ready)}
        log = self._log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
        wait_for(
            lambda: ready.exists() or self.process.poll() is not None,
            60,
            "the worker to become ready",
        )
        assert self.process.poll() is None, self.log()

    def log(self) -> str:
        """Return what the worker wrote so far."""
        return self._log_path.read_text(errors="replace")

    def events(self, name: str) -> list[dict[str, Any]]:
        """Return the worker's structured log events called ``name``."""
        found = []
        for line in self.log().splitlines():
            if line.startswith("{") and f'"{name}"' in line:
                event = json.loads(line)
                if event.get("event") == name:
                    found.append(event)
        return found

    def stop(self) -> None:
        """Stop the worker gracefully (warm shutdown)."""
        self._stopping = True
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL the worker and every process it started."""
        self._stopping = True
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PersistentRedis:
    """A private redis-server with append-only persistence, restartable."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it and wait until it answers."""
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed for this test"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        wait_for(lambda: _pings(client), 10, "redis-server to start")

    def stop(self) -> None:
        """Stop it the way an operator restart would (SIGTERM)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """Run ``oppsync serve`` with the settings; yield its base URL once
    ``/readyz`` answers 200, and stop it on exit."""
    server = subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "serve"],
        cwd=REPO_ROOT,
        env={**os.environ, **settings.to_env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{settings.ingest_port}"
    try:
        wait_for(lambda: _answers(f"{url}/readyz"), 30, "oppsync serve")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=15)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def run_oppsync(
    settings: Settings, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``oppsync ARGS`` in a subprocess with the settings' environment."""
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env={**os.environ, **settings.to_env(), **(env or {})},
    )
