"""The ``oppsync`` command as a user runs it, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support import REPO_ROOT, SESSION_PREFIXES, Worker, run_oppsync
from worker.settings import Settings

pytestmark = pytest.mark.integration


def oppsync(
    settings: Settings, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``oppsync ARGS`` with the settings' environment."""
    return run_oppsync(settings, *args, stdin=stdin, env=env)


def job_line(key: str, **extra: object) -> str:
    """Return one JSON Lines job by name."""
    job = {
        "idempotencyKey": key,
        "name": f"Deal {key}",
        "party": {"name": "Betatech"},
        "milestone": {"pipeline": "Sales", "name": "Won"},
        "value": {"amount": 1054.10, "currency": "USD"},
        **extra,
    }
    return json.dumps(job)


def test_enqueue_refuses_bad_lines_and_keeps_the_rest(
    settings: Settings, worker: Worker, tmp_path: Path
) -> None:
    """Bad lines are listed with field and reason; the good ones around them go in."""
    keys = [f"cli-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(
        "\n".join(
            [
                job_line(keys[0]),
                job_line("bad", probability=250),
                "{not json",
                job_line(keys[1]),
            ]
        )
        + "\n"
    )

    result = oppsync(settings, "enqueue", str(jobs))

    assert result.returncode == 1, result.stderr
    assert (
        "line 2: probability: Input should be less than or equal to 100"
        in result.stdout
    )
    assert "line 3: (json): not valid JSON" in result.stdout
    assert result.stdout.strip().endswith("enqueued 2, duplicates 0, refused 2")


def test_enqueue_from_stdin_then_status_and_wait(
    settings: Settings, worker: Worker
) -> None:
    """Jobs piped in finish; status --json and wait report them."""
    key = f"cli-{uuid.uuid4().hex[:8]}"

    enqueued = oppsync(settings, "enqueue", "-", stdin=job_line(key))
    waited = oppsync(settings, "wait", "--timeout", "60")
    status = oppsync(settings, "status", key, "--json")

    assert enqueued.returncode == 0, enqueued.stdout + enqueued.stderr
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert "verified" in waited.stdout
    body = json.loads(status.stdout)
    assert {"key", "state", "opportunityId", "attempts", "error"} <= body.keys()
    assert (body["key"], body["state"]) == (key, "verified")
    assert isinstance(body["opportunityId"], int)


def test_enqueue_twice_reports_duplicates(settings: Settings, worker: Worker) -> None:
    """The same file enqueued again is all duplicates and exits 0."""
    line = job_line(f"cli-{uuid.uuid4().hex[:8]}")

    oppsync(settings, "enqueue", "-", stdin=line)
    again = oppsync(settings, "enqueue", "-", stdin=line)

    assert again.returncode == 0
    assert "enqueued 0, duplicates 1, refused 0" in again.stdout


def test_json_array_input_is_accepted(settings: Settings, worker: Worker) -> None:
    """A JSON array of jobs is read like JSON Lines."""
    lines = [json.loads(job_line(f"cli-{uuid.uuid4().hex[:8]}")) for _ in range(3)]

    result = oppsync(settings, "enqueue", "-", stdin=json.dumps(lines))

    assert result.returncode == 0
    assert "enqueued 3" in result.stdout


def test_enqueue_without_redis_exits_2(settings: Settings) -> None:
    """With Redis unreachable the command says so and exits 2."""
    result = oppsync(
        settings,
        "enqueue",
        "-",
        stdin=job_line("x"),
        env={"REDIS_URL": "redis://127.0.0.1:1/0"},
    )

    assert result.returncode == 2
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in result.stderr


def test_status_of_unknown_key_exits_1(settings: Settings) -> None:
    """Asking for a key never enqueued is an error, not an empty answer."""
    result = oppsync(settings, "status", "no-such-key")

    assert result.returncode == 1
    assert "no job with key 'no-such-key'" in result.stderr


def test_wait_times_out_with_exit_1(settings: Settings, simulator: object) -> None:
    """wait gives up at its timeout while a job is unfinished."""
    stalled = settings.with_overrides(key_prefix=f"oppsync-test-{uuid.uuid4().hex[:8]}")
    SESSION_PREFIXES.append(stalled.key_prefix)
    oppsync(
        stalled, "enqueue", "-", stdin=job_line("stalled")
    )  # no worker on this queue

    result = oppsync(stalled, "wait", "--timeout", "1")

    assert result.returncode == 1
    assert "1 jobs still unfinished" in result.stderr


def test_worker_refuses_unsafe_bounds(settings: Settings) -> None:
    """A worker whose waits could outlive the visibility timeout does not start."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker",
            "worker",
            "--queues",
            f"refused-{uuid.uuid4().hex[:6]}",
            "--pool",
            "solo",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={**os.environ, **settings.to_env(), "OPPSYNC_MAX_COUNTDOWN_S": "2000"},
    )

    assert result.returncode != 0
    assert "worker_refused_to_start" in result.stderr + result.stdout


def test_enqueue_with_a_mapping_reads_csv_rows(
    settings: Settings, tmp_path: Path
) -> None:
    """`enqueue --map` turns CSV rows into jobs; a row it cannot use is refused
    by line and job field, and the rows around it go in."""
    prefix = uuid.uuid4().hex[:6]
    rows = tmp_path / "deals.csv"
    rows.write_text(
        "opportunity_id,sales_agent,product,account,deal_stage,"
        "engage_date,close_date,close_value\n"
        f"{prefix}1,Moses Frase,GTXPro,Betatech,Won,2016-10-20,2017-03-01,1054\n"
        f"{prefix}2,Moses Frase,GTXPro,,Won,2016-10-20,2017-03-01,1054\n"
        f"{prefix}3,Moses Frase,GTXPro,Betatech,Prospecting,,,\n"
    )
    mapping = str(REPO_ROOT / "examples" / "crm-sales.toml")

    result = oppsync(settings, "enqueue", "--map", mapping, str(rows))
    unmapped = oppsync(settings, "enqueue", str(rows))

    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "line 3: party: is required (or give partyId)",
        "enqueued 2, duplicates 0, refused 1",
    ]
    assert oppsync(settings, "status", f"{prefix}1").returncode == 0
    assert unmapped.returncode == 2
    assert "--map" in unmapped.stderr


def test_enqueue_refuses_a_broken_mapping_by_entry(
    settings: Settings, tmp_path: Path
) -> None:
    """A mapping with an unknown job field stops the run before any job is read."""
    mapping = tmp_path / "broken.toml"
    mapping.write_text('[fields]\n"party.nmae" = "account"\n')

    result = oppsync(settings, "enqueue", "--map", str(mapping), "-", stdin="{}\n")

    assert result.returncode == 2
    assert "party.nmae" in result.stderr


def test_refusals_in_a_json_array_are_counted_by_item(
    settings: Settings, tmp_path: Path
) -> None:
    """A pretty-printed array's refusals name the item, not a line."""
    jobs = tmp_path / "jobs.json"
    good = json.loads(job_line(f"arr-{uuid.uuid4().hex[:8]}"))
    jobs.write_text(json.dumps([good, {"name": "x"}], indent=2))

    result = oppsync(settings, "enqueue", str(jobs))

    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith("item 2: ")
