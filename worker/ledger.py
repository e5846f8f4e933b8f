"""The ledger: one durable Redis record per job, the truth about that job.

Keys, under the configured prefix ``p``:

- ``p:job:{key}`` (hash): the canonical payload and its fingerprint, the
  state, ``opportunityId`` once known, ``attempts``, ``failures``,
  ``unfinishedRuns:{step}``, the lease
  (``leaseHolder``, ``leaseUntil`` in epoch ms), ``createPending`` while a
  create may have reached Capsule without its outcome recorded, timestamps
  in epoch ms, and the last error.
- ``p:states`` (hash): number of jobs per state.
- ``p:active`` (sorted set): keys of jobs not yet in a terminal state.
- ``p:finished`` (sorted set): verified and repaired keys, by finish time.
- ``p:dead`` (sorted set) and ``p:dead:{key}`` (hash): the dead letters.

Every transition is one Lua script, so concurrent workers never see a half
move. Only the holder of a job's lease may send its create; a lease that
outlives its holder expires and the next delivery takes it over.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import redis

from worker.job import Job

#: States a job can no longer leave.
TERMINAL_STATES = frozenset({"verified", "repaired", "dead"})
#: Every state, in the order a job passes through them.
STATES = ("queued", "creating", "retrying", "created", "verified", "repaired", "dead")

Admission = Literal["new", "duplicate", "conflict"]


def now_ms() -> int:
    """Return the wall-clock time in epoch milliseconds."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Claim:
    """What taking a job's lease found.

    Attributes:
        outcome: ``claimed``, ``missing``, ``terminal``, ``created`` or
            ``leased``.
        detail: the terminal state, the opportunity id, or the lease's
            remaining milliseconds, depending on ``outcome``.
    """

    outcome: str
    detail: str = ""
    record: JobRecord | None = None


@dataclass(frozen=True)
class JobRecord:
    """A read-only view of a job's ledger entry."""

    key: str
    state: str
    payload: dict[str, Any]
    opportunity_id: int | None
    attempts: int
    failures: int
    repair_sent: bool
    create_pending: bool
    first_sent_at_ms: int | None
    created_at_ms: int
    updated_at_ms: int
    error: str | None

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> JobRecord:
        """Build a record from the raw Redis hash."""
        opportunity = data.get("opportunityId")
        first_sent = data.get("firstSentAt")
        return cls(
            key=data.get("key", ""),
            state=data.get("state", "queued"),
            payload=json.loads(data["payload"]),
            opportunity_id=int(opportunity) if opportunity else None,
            attempts=int(data.get("attempts", 0)),
            failures=int(data.get("failures", 0)),
            repair_sent="repairSentAt" in data,
            create_pending=data.get("createPending") == "1",
            first_sent_at_ms=int(first_sent) if first_sent else None,
            created_at_ms=int(data.get("createdAt", 0)),
            updated_at_ms=int(data.get("updatedAt", 0)),
            error=data.get("lastError"),
        )

    def as_status(self) -> dict[str, Any]:
        """Return the public status shape used by ``oppsync status``."""
        return {
            "key": self.key,
            "state": self.state,
            "opportunityId": self.opportunity_id,
            "attempts": self.attempts,
            "error": self.error,
            "createdAt": _iso(self.created_at_ms),
            "updatedAt": _iso(self.updated_at_ms),
        }


class Ledger:
    """Atomic job records in Redis; see the module docstring for keys."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._scripts = {name: self._load(name) for name in _SCRIPT_NAMES}

    def _load(self, name: str) -> Any:
        folder = Path(__file__).parent / "lua"
        prelude = (folder / "prelude.lua").read_text()
        body = (folder / f"{name}.lua").read_text()
        return self._redis.register_script(prelude + "\n" + body)

    def job_key(self, key: str) -> str:
        """Return the Redis key of a job's hash."""
        return f"{self._prefix}:job:{key}"

    @property
    def _states(self) -> str:
        return f"{self._prefix}:states"

    @property
    def _active(self) -> str:
        return f"{self._prefix}:active"

    def admit(self, job: Job) -> Admission:
        """Record a new job once per key; idempotent.

        Returns:
            ``new`` the first time, ``duplicate`` for the same content again,
            ``conflict`` when the key is already taken by other content.
        """
        payload = json.dumps(job.canonical(), separators=(",", ":"), sort_keys=True)
        keys = [self.job_key(job.key), self._states, self._active]
        args = [job.key, payload, job.fingerprint(), now_ms()]
        result: Admission = self._scripts["admit"](keys=keys, args=args)
        return result

    def claim(self, key: str, holder: str, lease_s: int) -> Claim:
        """Take the job's lease for ``lease_s`` seconds and count an attempt."""
        keys = [self.job_key(key), self._states]
        reply = self._scripts["claim"](
            keys=keys, args=[holder, now_ms(), lease_s * 1000]
        )
        if reply[0] == "claimed":
            fields = dict(zip(reply[1::2], reply[2::2], strict=True))
            return Claim("claimed", record=JobRecord.from_hash(fields))
        return Claim(*reply)

    def mark_sent(self, key: str, holder: str) -> bool:
        """Record that a create is about to go out; False means do not send."""
        return bool(
            self._scripts["mark_sent"](
                keys=[self.job_key(key)], args=[holder, now_ms()]
            )
        )

    def record_created(self, key: str, opportunity_id: int, via: str) -> int:
        """Record the job's opportunity; returns the id that won (first one)."""
        keys = [self.job_key(key), self._states]
        known = self._scripts["record_created"](
            keys=keys, args=[opportunity_id, now_ms(), via]
        )
        return int(known)

    def release(
        self, key: str, holder: str, error: str, *, not_sent: bool, is_failure: bool
    ) -> int:
        """Drop the lease after a transient failure; the job waits to retry.

        Args:
            not_sent: no create of this job can have reached Capsule, so the
                next attempt need not look for one first.
            is_failure: the failure spends the retry budget (waits for the
                rate limit or a valid token do not).

        Returns:
            The job's failure count, or -1 when ``holder`` lost the lease.
        """
        keys = [self.job_key(key), self._states]
        args = [holder, now_ms(), error, int(not_sent), int(is_failure)]
        return int(self._scripts["release"](keys=keys, args=args))

    def begin_run(self, key: str, step: str) -> int:
        """Count a run of ``step`` that has started; returns how many never
        ended.

        A worker process that dies mid-task never calls :meth:`end_run`, so
        the count minus one is the number of workers this job has killed or
        lost. Returns -1 for an unknown job.
        """
        field = f"unfinishedRuns:{step}"
        return int(self._scripts["begin_run"](keys=[self.job_key(key)], args=[field]))

    def end_run(self, key: str, step: str) -> None:
        """Count a task run of ``step`` that ended, whatever its outcome."""
        field = f"unfinishedRuns:{step}"
        self._scripts["end_run"](keys=[self.job_key(key)], args=[field])

    def kill(
        self,
        key: str,
        reason: str,
        message: str,
        *,
        status_code: int | None = None,
        holder: str = "",
    ) -> bool:
        """End the job in ``dead`` and write its single dead-letter record.

        Returns:
            True when this call ended the job; False when it had already
            ended (so a second call never writes a second dead letter).
        """
        keys = [
            self.job_key(key),
            self._states,
            self._active,
            f"{self._prefix}:dead",
            f"{self._prefix}:dead:{key}",
        ]
        status = "" if status_code is None else str(status_code)
        args = [key, now_ms(), reason, message, status, holder]
        return bool(self._scripts["dead"](keys=keys, args=args))

    def complete(self, key: str, opportunity_id: int, final_state: str) -> int:
        """Move a created job to ``verified`` or ``repaired``.

        Returns:
            1 when finished now, 0 when it was not waiting for verification,
            -1 when ``opportunity_id`` is not the one recorded.
        """
        keys = [
            self.job_key(key),
            self._states,
            self._active,
            f"{self._prefix}:finished",
        ]
        args = [key, opportunity_id, final_state, now_ms()]
        return int(self._scripts["complete"](keys=keys, args=args))

    def note(self, key: str, **fields: str | int) -> None:
        """Set informational fields on a job (no state change)."""
        self._redis.hset(self.job_key(key), mapping=cast(Any, fields))

    def get(self, key: str) -> JobRecord | None:
        """Return the job's record, or None for an unknown key."""
        data = cast(dict[str, str], self._redis.hgetall(self.job_key(key)))
        return JobRecord.from_hash(data) if data else None

    def state_counts(self) -> dict[str, int]:
        """Return the number of jobs in each state (zeros left out)."""
        raw = cast(dict[str, str], self._redis.hgetall(self._states))
        return {state: int(n) for state, n in raw.items() if int(n) > 0}

    def active_count(self) -> int:
        """Return how many jobs are not yet in a terminal state."""
        return int(self._redis.zcard(self._active))

    def active_keys(self, older_than_ms: int) -> list[str]:
        """Return keys of unfinished jobs last touched before ``older_than_ms``."""
        keys = cast(
            list[str], self._redis.zrangebyscore(self._active, "-inf", older_than_ms)
        )
        return keys

    def prune_finished(self, older_than_ms: int, limit: int = 1000) -> int:
        """Forget verified and repaired jobs finished before ``older_than_ms``.

        Dead jobs and their dead letters are never pruned here. Returns how
        many jobs were forgotten; a forgotten key may be enqueued anew.
        """
        keys = [f"{self._prefix}:finished", self._states]
        args = [older_than_ms, limit, f"{self._prefix}:job:"]
        return int(self._scripts["prune"](keys=keys, args=args))

    def count_failure(self, key: str, step: str) -> int:
        """Count one failed try of ``step``; returns the step's failures."""
        return int(self._redis.hincrby(self.job_key(key), f"failures:{step}", 1))

    def touch(self, key: str) -> None:
        """Mark an unfinished job as just looked after (sweep bookkeeping)."""
        self._redis.zadd(self._active, {key: now_ms()}, xx=True)

    def revive(self, key: str, job: Job | None = None) -> str:
        """Bring a dead job back, optionally with a corrected payload.

        Returns:
            ``queued``, ``created`` (its opportunity is known: verify next)
            or ``not_dead`` (nothing changed; replaying twice is harmless).
        """
        payload = fingerprint = ""
        if job is not None:
            payload = json.dumps(job.canonical(), separators=(",", ":"), sort_keys=True)
            fingerprint = job.fingerprint()
        keys = self._dead_keys(key)
        keys.insert(2, self._active)
        args = [key, now_ms(), payload, fingerprint]
        return str(self._scripts["revive"](keys=keys, args=args))

    def forget_dead(self, key: str) -> bool:
        """Delete a dead job and its dead letter; False if it is not dead."""
        keys = self._dead_keys(key)
        return bool(self._scripts["forget_dead"](keys=keys, args=[key]))

    def _dead_keys(self, key: str) -> list[str]:
        return [
            self.job_key(key),
            self._states,
            f"{self._prefix}:dead",
            f"{self._prefix}:dead:{key}",
        ]

    def dead_letter(self, key: str) -> dict[str, str]:
        """Return the dead-letter record of ``key`` (empty when none)."""
        data = cast(dict[str, str], self._redis.hgetall(f"{self._prefix}:dead:{key}"))
        return data

    def dead_keys(self, since_ms: int | None = None) -> list[str]:
        """Return dead jobs' keys, oldest first (those dead since ``since_ms``)."""
        low = "-inf" if since_ms is None else since_ms
        keys = cast(
            list[str], self._redis.zrangebyscore(f"{self._prefix}:dead", low, "+inf")
        )
        return keys


_SCRIPT_NAMES = (
    "admit",
    "claim",
    "mark_sent",
    "record_created",
    "release",
    "dead",
    "complete",
    "begin_run",
    "end_run",
    "prune",
    "revive",
    "forget_dead",
)


def _iso(ms: int) -> str | None:
    if not ms:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
