"""The create step: one job, at most one opportunity.

The order of steps is the whole design:

1. take the job's lease in the ledger (an attempt is counted);
2. resolve names to ids;
3. if an earlier create may have reached Capsule, look for its opportunity
   and adopt it when found;
4. pass the ledger's send gate (lease still ours, no opportunity recorded),
   which records that a create is in flight;
5. POST, and record the id from the 201.

A transient failure gives the lease back, clearing "in flight" only when no
create can have reached Capsule; the next attempt starts at step 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.capsule import CapsuleClient
from worker.errors import (
    LeaseHeld,
    OutcomeUnknown,
    RetriesExhausted,
    TransientError,
    spends_attempt,
)
from worker.job import Job, parse_job
from worker.ledger import JobRecord, Ledger
from worker.opportunity import create_body
from worker.reconciliation import Reconciler
from worker.resolver import NameResolver, Resolved


@dataclass(frozen=True)
class CreateOutcome:
    """What the create step achieved.

    Attributes:
        opportunity_id: the job's opportunity, or None when there is nothing
            left to do (the job is finished or unknown).
        via: ``posted``, ``adopted``, ``recorded`` (found in the ledger),
            ``terminal`` or ``missing``.
    """

    opportunity_id: int | None
    via: str


class Creation:
    """Runs the create step for one job; see the module docstring."""

    def __init__(
        self,
        ledger: Ledger,
        resolver: NameResolver,
        capsule: CapsuleClient,
        reconciler: Reconciler,
        *,
        lease_s: int,
        max_attempts: int,
    ) -> None:
        self._ledger = ledger
        self._resolver = resolver
        self._capsule = capsule
        self._reconciler = reconciler
        self._lease_s = lease_s
        self._max_attempts = max_attempts

    def run(self, key: str, holder: str) -> CreateOutcome:
        """Create (or find) the job's opportunity. Idempotent per job key.

        Raises:
            TransientError: retry later; the lease has been given back.
            RetriesExhausted: transient failures used up the attempts.
            PermanentError: the job cannot succeed.
        """
        claim = self._ledger.claim(key, holder, self._lease_s)
        if claim.outcome in ("missing", "terminal"):
            return CreateOutcome(None, claim.outcome)
        if claim.outcome == "created":
            return CreateOutcome(int(claim.detail), "recorded")
        if claim.outcome == "leased":
            wait_s = int(claim.detail) / 1000
            raise LeaseHeld(
                f"another worker holds the lease for {wait_s:.0f} s", wait_s=wait_s
            )

        progress = _Progress()
        try:
            return self._attempt(key, holder, claim.record, progress)
        except TransientError as exc:
            self._give_back(key, holder, progress, exc)
            raise

    def adopt_lost(self, key: str) -> CreateOutcome | None:
        """Adopt the opportunity a create lost with its worker may have made.

        Returns None when no create was in flight or none is found. Reads
        only; safe to retry.
        """
        record = self._ledger.get(key)
        if record is None:
            return None
        job = parse_job(record.payload)
        return self._adopt(key, record, job, self._resolver.resolve(job))

    def _attempt(
        self, key: str, holder: str, record: JobRecord | None, progress: _Progress
    ) -> CreateOutcome:
        if record is None:
            return CreateOutcome(None, "missing")
        job = parse_job(record.payload)
        resolved = self._resolver.resolve(job)
        adopted = self._adopt(key, record, job, resolved)
        if adopted is not None:
            return adopted
        progress.nothing_in_flight = True
        return self._post(key, holder, job, resolved)

    def _adopt(
        self, key: str, record: JobRecord, job: Job, resolved: Resolved
    ) -> CreateOutcome | None:
        """Look for, and record, what an earlier create in flight made."""
        if not record.create_pending:
            return None
        found = self._reconciler.find(
            key, job.name, resolved.party_id, record.first_sent_at_ms
        )
        if found is None:
            return None
        return CreateOutcome(self._record(key, found, "adopted"), "adopted")

    def _post(
        self, key: str, holder: str, job: Job, resolved: Resolved
    ) -> CreateOutcome:
        if not self._ledger.mark_sent(key, holder):
            raise LeaseHeld(
                "the lease moved to another worker before the create was sent"
            )
        marker = self._reconciler.marker_definition_id
        answer = self._capsule.create(
            "opportunities", create_body(job, resolved, key, marker)
        )
        opportunity_id = int(answer["opportunity"]["id"])
        return CreateOutcome(self._record(key, opportunity_id, "posted"), "posted")

    def _record(self, key: str, opportunity_id: int, via: str) -> int:
        return self._ledger.record_created(key, opportunity_id, via)

    def _give_back(
        self, key: str, holder: str, progress: _Progress, exc: TransientError
    ) -> None:
        is_failure = spends_attempt(exc)
        not_sent = progress.nothing_in_flight and not isinstance(exc, OutcomeUnknown)
        failures = self._ledger.release(
            key, holder, str(exc), not_sent=not_sent, is_failure=is_failure
        )
        if is_failure and failures >= self._max_attempts:
            raise RetriesExhausted(
                f"gave up after {failures} failed attempts; last error: {exc}"
            ) from exc


@dataclass
class _Progress:
    """What one attempt learnt before it failed.

    Attributes:
        nothing_in_flight: no earlier create of this job is unaccounted for,
            so a failure before sending may clear the in-flight mark.
    """

    nothing_in_flight: bool = False
