"""The periodic sweep: resume parked jobs, rescue lost ones, prune old ones.

Run by Celery beat (``celery -A worker beat``) every
``OPPSYNC_SWEEP_INTERVAL_S``. Each part is safe to run twice and from
several places at once, because every step it re-sends is idempotent per
job key:

- parked steps whose wait is over are sent again (see :mod:`worker.parking`);
- an unfinished job that nothing has touched for longer than any countdown
  plus any task run lost its message (a task that failed unexpectedly is
  not requeued; a publish can fail after the ledger moved), so its next
  step is sent again: the create, or the verification when an opportunity
  is already recorded;
- verified and repaired jobs older than the retention are forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from worker.ledger import TERMINAL_STATES, now_ms
from worker.parking import ParkedStep, next_step

if TYPE_CHECKING:
    from worker.runtime import Runtime


class StepSender(Protocol):
    """Sends a job's next step as a Celery task."""

    def __call__(self, step: ParkedStep) -> None:
        """Send ``step`` now."""


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    resumed: int
    rescued: int
    pruned: int


def sweep(rt: Runtime, send: StepSender) -> SweepReport:
    """Run every part of the sweep once."""
    resumed = 0
    for step in rt.parking.take_due():
        send(step)
        resumed += 1
    rescued = rescue_stale_jobs(rt, send)
    retention_ms = rt.settings.finished_retention_s * 1000
    pruned = rt.ledger.prune_finished(now_ms() - retention_ms)
    return SweepReport(resumed, rescued, pruned)


def rescue_stale_jobs(rt: Runtime, send: StepSender) -> int:
    """Re-send the next step of every stale unfinished job; returns how many."""
    cutoff_ms = now_ms() - int(rt.settings.stale_after_s * 1000)
    rescued = 0
    for key in rt.ledger.active_keys(cutoff_ms):
        record = rt.ledger.get(key)
        if record is None or record.state in TERMINAL_STATES:
            continue
        if record.updated_at_ms > cutoff_ms:
            continue
        send(next_step(record))
        rt.ledger.touch(key)
        rescued += 1
    return rescued
