"""The whole pipeline: producer, Redis, a real worker, the simulator over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support import ACME, ANN, DESK, EAST, Simulator, Worker, wait_for
from worker.ledger import TERMINAL_STATES, JobRecord, Ledger
from worker.producer import EnqueueReport, Producer

pytestmark = pytest.mark.integration


def a_job(**changes: Any) -> dict[str, Any]:
    """Return a valid job by name with a fresh key, changed by ``changes``."""
    job: dict[str, Any] = {
        "idempotencyKey": f"it-{uuid.uuid4().hex[:12]}",
        "name": "GTX Pro for Acme",
        "party": {"name": "Acme Corporation"},
        "milestone": {"pipeline": "Sales", "name": "Prospecting"},
        "owner": {"username": "ann"},
        "team": {"name": "East"},
        "value": {"amount": "4821.10", "currency": "USD"},
        "expectedCloseOn": "2027-03-01",
    }
    job.update(changes)
    return job


def enqueue(producer: Producer, *jobs: dict[str, Any]) -> EnqueueReport:
    """Enqueue ``jobs`` and return the report."""
    return producer.submit_all(enumerate(jobs, start=1))


def finished(ledger: Ledger, key: str, timeout_s: float = 30.0) -> JobRecord:
    """Wait until the job is in a terminal state and return its record."""

    def terminal() -> JobRecord | None:
        record = ledger.get(key)
        return record if record and record.state in TERMINAL_STATES else None

    return wait_for(terminal, timeout_s, f"job {key} to finish")


def route_count(sim: Simulator, route: str) -> int:
    """Return how many requests the simulator answered on ``route``."""
    return int(sim.stats()["byRoute"].get(route, 0))


def test_job_is_created_once_and_verified(
    worker: Worker, producer: Producer, ledger: Ledger, simulator: Simulator
) -> None:
    """A job by name becomes one opportunity with its owner, team and amount."""
    job = a_job()

    report = enqueue(producer, job)
    record = finished(ledger, job["idempotencyKey"])

    assert report.enqueued == 1
    assert record.state == "verified"
    [created] = simulator.opportunities_for(job["idempotencyKey"])
    assert created["id"] == record.opportunity_id
    assert created["party"]["id"] == ACME
    assert (created["owner"]["id"], created["team"]["id"]) == (ANN, EAST)
    assert str(created["value"]["amount"]) == "4821.10"
    assert created["expectedCloseOn"] == "2027-03-01"


def test_automation_cleared_owner_is_repaired_with_one_put(
    worker: Worker, producer: Producer, ledger: Ledger, simulator: Simulator
) -> None:
    """An owner cleared by automation is restored by one PUT of owner and team."""
    job = a_job(milestone={"pipeline": "Sales", "name": "Engaging"})
    puts_before = route_count(simulator, "PUT /opportunities/{id}")

    enqueue(producer, job)
    record = finished(ledger, job["idempotencyKey"])

    assert record.state == "repaired"
    assert route_count(simulator, "PUT /opportunities/{id}") - puts_before == 1
    [created] = simulator.opportunities_for(job["idempotencyKey"])
    assert (created["owner"]["id"], created["team"]["id"]) == (ANN, EAST)


def test_job_without_owner_or_team_keeps_what_automation_set(
    worker: Worker, producer: Producer, ledger: Ledger, simulator: Simulator
) -> None:
    """A job that named no owner or team needs no repair after automation."""
    job = a_job(milestone={"pipeline": "Sales", "name": "Engaging"})
    del job["owner"], job["team"]

    enqueue(producer, job)
    record = finished(ledger, job["idempotencyKey"])

    assert record.state == "verified"
    [created] = wait_for(
        lambda: [
            o for o in simulator.opportunities_for(job["idempotencyKey"]) if o["team"]
        ],
        10,
        "the automation to run",
    )
    assert created["team"]["id"] == DESK


def test_capsule_422_ends_dead_with_capsules_message(
    worker: Worker, producer: Producer, ledger: Ledger, simulator: Simulator
) -> None:
    """A create Capsule refuses with 422 ends dead, carrying Capsule's own words."""
    job = a_job(party=None, partyId=987654)
    del job["party"]

    enqueue(producer, job)
    record = finished(ledger, job["idempotencyKey"])

    assert record.state == "dead"
    assert record.error is not None and "party not found" in record.error
    letter = ledger.dead_letter(job["idempotencyKey"])
    assert (letter["reason"], letter["status"]) == ("rejected", "422")
    assert simulator.opportunities_for(job["idempotencyKey"]) == []


def test_unknown_name_ends_dead_before_any_create(
    worker: Worker, producer: Producer, ledger: Ledger, simulator: Simulator
) -> None:
    """A party name that matches nothing ends the job dead without a POST."""
    job = a_job(party={"name": "Nobody Ltd"})
    posts_before = route_count(simulator, "POST /opportunities")

    enqueue(producer, job)
    record = finished(ledger, job["idempotencyKey"])

    assert record.state == "dead"
    assert ledger.dead_letter(job["idempotencyKey"])["reason"] == "lookup"
    assert "Nobody Ltd" in (record.error or "")
    assert route_count(simulator, "POST /opportunities") == posts_before


def test_owner_outside_team_ends_dead_before_any_create(
    worker: Worker, producer: Producer, ledger: Ledger, simulator: Simulator
) -> None:
    """An owner who is not a member of the team is refused before Capsule sees it."""
    job = a_job(owner={"username": "cat"})
    posts_before = route_count(simulator, "POST /opportunities")

    enqueue(producer, job)
    record = finished(ledger, job["idempotencyKey"])

    assert record.state == "dead"
    assert "not a member of team 'East'" in (record.error or "")
    assert route_count(simulator, "POST /opportunities") == posts_before


def test_duplicate_enqueue_creates_nothing(
    worker: Worker, producer: Producer, ledger: Ledger, simulator: Simulator
) -> None:
    """The same job enqueued twice is one job and one opportunity."""
    job = a_job()

    first = enqueue(producer, job)
    second = enqueue(producer, job)
    finished(ledger, job["idempotencyKey"])

    assert (first.enqueued, second.enqueued, second.duplicates) == (1, 0, 1)
    assert len(simulator.opportunities_for(job["idempotencyKey"])) == 1


def test_same_key_with_other_content_is_refused(producer: Producer) -> None:
    """Reusing a key for different content is a conflict, never a merge."""
    job = a_job()
    enqueue(producer, job)

    report = enqueue(producer, {**job, "name": "Something else"})

    assert report.enqueued == 0
    assert [r.field for r in report.refusals] == ["idempotencyKey"]
    assert "other content" in report.refusals[0].message


def test_5xx_then_success_creates_exactly_one(
    worker: Worker, producer: Producer, ledger: Ledger, simulator: Simulator
) -> None:
    """Two 503s before the create succeeds still make exactly one opportunity."""
    job = a_job()
    simulator.faults(
        {
            "kind": "error",
            "status": 503,
            "method": "POST",
            "path": "/opportunities",
            "count": 2,
        }
    )

    enqueue(producer, job)
    record = finished(ledger, job["idempotencyKey"])

    assert record.state == "verified"
    assert record.attempts == 3
    assert len(simulator.opportunities_for(job["idempotencyKey"])) == 1


def test_commit_then_502_is_adopted_not_duplicated(
    worker: Worker, producer: Producer, ledger: Ledger, simulator: Simulator
) -> None:
    """A create that commits but answers 502 is found by its marker and adopted."""
    job = a_job()
    simulator.faults(
        {"kind": "commit_502", "method": "POST", "path": "/opportunities", "count": 1}
    )

    enqueue(producer, job)
    record = finished(ledger, job["idempotencyKey"])

    [created] = simulator.opportunities_for(job["idempotencyKey"])
    assert record.state == "verified"
    assert record.opportunity_id == created["id"]
    assert ledger.get(job["idempotencyKey"]) is not None


def test_commit_answered_after_read_timeout_is_adopted(
    worker: Worker, producer: Producer, ledger: Ledger, simulator: Simulator
) -> None:
    """A create answered after the client gave up is adopted, not posted again."""
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

    enqueue(producer, job)
    record = finished(ledger, job["idempotencyKey"])

    [created] = simulator.opportunities_for(job["idempotencyKey"])
    assert record.state == "verified"
    assert record.opportunity_id == created["id"]
