"""Waits too long for the broker: parked in Redis, resumed by the sweep.

The Redis transport redelivers any message held past its visibility timeout
(design note 1), and Capsule's rate window can reset almost an hour away.
So a job that must wait longer than the largest countdown is not given a
countdown at all: it is parked in a sorted set scored by its resume time,
its message is acknowledged, and the periodic sweep sends its step again
once the time has come. A job whose parking entry is lost (a crash between
taking it and re-sending) is still unfinished in the ledger, so the stale
scan of the sweep finds it.

Keys, under prefix ``p``: ``p:parked`` (sorted set; member
``step|opportunityId|account|key``, score the resume time in epoch ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis

from worker.ledger import JobRecord, now_ms

#: Most parked jobs resumed by one sweep.
RESUME_BATCH = 1000


@dataclass(frozen=True)
class ParkedStep:
    """A step to run again: ``create`` or ``verify`` (with its opportunity),
    for a job of an account (None: the default one)."""

    step: str
    key: str
    opportunity_id: int | None = None
    account: str | None = None

    def member(self) -> str:
        """Encode as a sorted-set member."""
        return (
            f"{self.step}|{self.opportunity_id or ''}|{self.account or ''}|{self.key}"
        )

    @classmethod
    def from_member(cls, member: str) -> ParkedStep:
        """Decode a sorted-set member (the key may itself contain ``|``)."""
        step, opportunity, account, key = member.split("|", 3)
        return cls(
            step, key, int(opportunity) if opportunity else None, account or None
        )


def next_step(record: JobRecord) -> ParkedStep:
    """Return a known job's next step: its verification when the
    opportunity is recorded, else its create."""
    account = record.payload.get("account")
    if record.opportunity_id is not None:
        return ParkedStep("verify", record.key, record.opportunity_id, account)
    return ParkedStep("create", record.key, account=account)


class ParkingLot:
    """Parked steps in Redis; see the module docstring."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._key = f"{prefix}:parked"
        lua = (Path(__file__).parent / "lua" / "park_due.lua").read_text()
        self._due = client.register_script(lua)

    def park(self, step: ParkedStep, wait_s: float) -> None:
        """Park ``step`` for ``wait_s`` seconds (idempotent per step)."""
        self._redis.zadd(self._key, {step.member(): now_ms() + int(wait_s * 1000)})

    def take_due(self) -> list[ParkedStep]:
        """Remove and return the steps whose wait is over."""
        members = self._due(keys=[self._key], args=[now_ms(), RESUME_BATCH])
        return [ParkedStep.from_member(str(m)) for m in members]

    def count(self) -> int:
        """Return how many steps are parked."""
        return int(self._redis.zcard(self._key))
