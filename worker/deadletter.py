"""The dead-letter store: jobs that ended for good, and their second chance.

Each dead job has exactly one record (written with its move to ``dead``,
see ``dead.lua``): the original job, a short reason class (``validation``,
``lookup``, ``rejected``, ``exhausted``, ``worker_lost``, ``deadline``,
``internal``), Capsule's own message and status when there was one, the
attempts and the timestamps. Records are durable: no TTL.

Replay is idempotent. A job replayed twice is revived once (the second
call finds it no longer dead); a job whose opportunity is already known
goes straight to verification; a job whose create may have reached Capsule
keeps that mark, so its next try looks for the opportunity before posting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from worker.errors import ConfigurationError
from worker.job import Job
from worker.ledger import Ledger
from worker.producer import Producer


@dataclass(frozen=True)
class DeadLetter:
    """One dead job, as its dead-letter record holds it."""

    key: str
    reason: str
    message: str
    status: int | None
    attempts: int
    created_at_ms: int
    dead_at_ms: int
    opportunity_id: int | None
    payload: dict[str, Any]

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> DeadLetter:
        """Build from the raw Redis hash."""
        return cls(
            key=data["key"],
            reason=data.get("reason", ""),
            message=data.get("message", ""),
            status=int(data["status"]) if data.get("status") else None,
            attempts=int(data.get("attempts") or 0),
            created_at_ms=int(data.get("createdAt") or 0),
            dead_at_ms=int(data.get("deadAt") or 0),
            opportunity_id=int(data["opportunityId"])
            if data.get("opportunityId")
            else None,
            payload=json.loads(data.get("payload") or "{}"),
        )

    def as_json(self) -> dict[str, Any]:
        """Return the record as plain JSON data."""
        return {
            "key": self.key,
            "reason": self.reason,
            "message": self.message,
            "status": self.status,
            "attempts": self.attempts,
            "createdAtMs": self.created_at_ms,
            "deadAtMs": self.dead_at_ms,
            "opportunityId": self.opportunity_id,
            "job": self.payload,
        }


#: Every reason class a dead letter can carry.
REASONS = (
    "validation",
    "lookup",
    "rejected",
    "exhausted",
    "worker_lost",
    "deadline",
    "internal",
)


def check_reason(reason: str | None) -> None:
    """Refuse a reason filter that no dead letter can ever match.

    Raises:
        ConfigurationError: naming the known reasons.
    """
    if reason is not None and reason not in REASONS:
        raise ConfigurationError(
            f"--reason {reason!r} is not a reason; reasons are {', '.join(REASONS)}"
        )


class DeadLetterStore:
    """Lists, replays and purges dead jobs."""

    def __init__(self, ledger: Ledger, producer: Producer) -> None:
        self._ledger = ledger
        self._producer = producer

    def letters(
        self, reason: str | None = None, since_ms: int | None = None
    ) -> list[DeadLetter]:
        """Return dead letters, oldest first, filtered by reason and time."""
        letters = [self.show(key) for key in self._ledger.dead_keys(since_ms)]
        return [x for x in letters if x is not None and reason in (None, x.reason)]

    def show(self, key: str) -> DeadLetter | None:
        """Return one job's dead letter, or None."""
        data = self._ledger.dead_letter(key)
        return DeadLetter.from_hash(data) if data else None

    def replay(self, key: str, job: Job | None = None) -> str:
        """Revive a dead job (with a corrected ``job`` if given) and queue it.

        Returns:
            ``queued``, ``created`` (sent to verification), ``not_dead``
            or ``unknown`` (no job has this key).
        """
        outcome = self._ledger.revive(key, job)
        if outcome == "not_dead":
            return outcome if self._ledger.get(key) else "unknown"
        record = self._ledger.get(key)
        if record is not None:
            self._producer.resend(record)
        return outcome

    def purge(self, keys: list[str]) -> int:
        """Forget dead jobs and their letters for good; returns how many."""
        return sum(self._ledger.forget_dead(key) for key in keys)
