"""Finding jobs whose message was lost, and sending it again.

A message can vanish: a task that failed in an unexpected way is not
requeued, a publish can fail after the ledger moved. The ledger still knows
the job is unfinished, so a periodic sweep (a Celery beat task) re-sends
the next step for any unfinished job that nothing has touched for longer
than any countdown plus any task run. Re-sending is safe: every step is
idempotent per job key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from worker.ledger import TERMINAL_STATES, now_ms

if TYPE_CHECKING:
    from worker.runtime import Runtime


def sweep_stuck_jobs(rt: Runtime, create_task: Any, verify_task: Any) -> int:
    """Re-send the pending step of every stale unfinished job.

    Returns:
        How many jobs were re-sent.
    """
    cutoff_ms = now_ms() - int(rt.settings.stale_after_s * 1000)
    resent = 0
    for key in rt.ledger.active_keys(cutoff_ms):
        record = rt.ledger.get(key)
        if record is None or record.state in TERMINAL_STATES:
            continue
        if record.updated_at_ms > cutoff_ms:
            continue
        if record.opportunity_id is not None:
            verify_task.apply_async((key, record.opportunity_id))
        else:
            create_task.apply_async((key,))
        rt.ledger.touch(key)
        resent += 1
    return resent
