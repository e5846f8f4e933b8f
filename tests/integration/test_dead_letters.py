"""Dead letters as an operator sees them: list, show, replay, purge."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support import Simulator, Worker, run_oppsync, wait_for
from worker.ledger import TERMINAL_STATES, Ledger
from worker.producer import Producer
from worker.settings import Settings

pytestmark = pytest.mark.integration


def oppsync(
    settings: Settings, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``oppsync ARGS`` with the settings' environment."""
    return run_oppsync(settings, *args, stdin=stdin, env=env)


def dead_job(producer: Producer, ledger: Ledger, party: str) -> dict[str, Any]:
    """Enqueue a job naming ``party`` and wait for it to end."""
    job = {
        "idempotencyKey": f"dl-{uuid.uuid4().hex[:10]}",
        "name": "Replayed deal",
        "party": {"name": party},
        "milestone": {"pipeline": "Sales", "name": "Won"},
    }
    producer.submit_all([(1, job)])
    wait_for(
        lambda: (r := ledger.get(job["idempotencyKey"])) and r.state in TERMINAL_STATES,
        30,
        "the job to end",
    )
    return job


def test_lookup_dead_letter_replays_once_the_name_exists(
    worker: Worker,
    producer: Producer,
    ledger: Ledger,
    simulator: Simulator,
    settings: Settings,
) -> None:
    """A job dead for an unknown party is listed, shown, and replayed into one
    opportunity once the party exists; a second replay changes nothing."""
    party = f"Newco {uuid.uuid4().hex[:6]}"
    job = dead_job(producer, ledger, party)
    key = job["idempotencyKey"]

    listed = oppsync(settings, "dead", "list", "--reason", "lookup", "--json")
    shown = json.loads(oppsync(settings, "dead", "show", key).stdout)
    simulator.admin(
        "POST", "parties", {"party": {"type": "organisation", "name": party}}
    )
    first = oppsync(settings, "dead", "replay", key)
    wait_for(lambda: ledger.get(key).state == "verified", 30, "the replay")  # type: ignore[union-attr]
    second = oppsync(settings, "dead", "replay", key)

    assert key in [json.loads(line)["key"] for line in listed.stdout.splitlines()]
    assert (shown["reason"], shown["job"]["party"]) == ("lookup", {"name": party})
    assert first.returncode == 0 and f"{key}: queued" in first.stdout
    assert second.returncode == 1 and "not dead" in second.stdout
    assert [
        o["name"] for o in simulator.opportunities() if o["party"]["name"] == party
    ] == ["Replayed deal"]


def test_replay_with_a_corrected_job_keeps_the_key(
    worker: Worker,
    producer: Producer,
    ledger: Ledger,
    settings: Settings,
    tmp_path: Path,
) -> None:
    """--with replaces a dead job's payload (validated) under the same key."""
    job = dead_job(producer, ledger, "No Such Party Ltd")
    key = job["idempotencyKey"]
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps({**job, "party": {"name": "Betatech"}}))
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**job, "probability": 300}))

    refused = oppsync(settings, "dead", "replay", key, "--with", str(broken))
    accepted = oppsync(settings, "dead", "replay", key, "--with", str(fixed))
    wait_for(lambda: ledger.get(key).state == "verified", 30, "the corrected job")  # type: ignore[union-attr]

    assert refused.returncode == 1 and "probability" in refused.stderr
    assert accepted.returncode == 0
    assert ledger.get(key).payload["party"] == {"name": "Betatech"}  # type: ignore[union-attr]


def test_purge_needs_confirmation(
    worker: Worker, producer: Producer, ledger: Ledger, settings: Settings
) -> None:
    """purge refuses without --yes off a terminal, and forgets with it."""
    key = dead_job(producer, ledger, "Gone Ltd")["idempotencyKey"]

    refused = oppsync(settings, "dead", "purge")
    purged = oppsync(settings, "dead", "purge", "--yes")

    assert refused.returncode == 2
    assert purged.returncode == 0
    assert ledger.get(key) is None
    assert ledger.dead_letter(key) == {}


def test_replay_says_what_it_could_not_do(settings: Settings) -> None:
    """Unknown reasons, unknown keys, empty selections and a misplaced --with
    each get their own message."""
    unknown_reason = oppsync(settings, "dead", "replay", "--reason", "LOOKUP")
    listing = oppsync(settings, "dead", "list", "--reason", "nonsense")
    nothing = oppsync(settings, "dead", "replay", "--reason", "deadline")
    unknown_key = oppsync(settings, "dead", "replay", "never-seen-key")
    misplaced = oppsync(
        settings, "dead", "replay", "--reason", "lookup", "--with", "fixed.json"
    )
    mixed = oppsync(settings, "dead", "replay", "some-key", "--reason", "lookup")

    assert unknown_reason.returncode == listing.returncode == 2
    assert "reasons are validation, lookup" in unknown_reason.stderr
    assert (nothing.returncode, nothing.stdout) == (0, "no dead jobs to replay\n")
    assert unknown_key.returncode == 1
    assert unknown_key.stdout == "never-seen-key: no job with this key\n"
    assert misplaced.returncode == 2
    assert "exactly one job" in misplaced.stderr
    assert mixed.returncode == 2
    assert "not both" in mixed.stderr
