"""Producing jobs: validate, admit once in the ledger, then queue the task.

Producers need no Capsule access and no worker code: the task is sent by
its wire name, with the job key as its only argument.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, BinaryIO, Literal

from celery import Celery

from worker.celery_app import CREATE_TASK, VERIFY_TASK, create_app
from worker.errors import JobInvalid
from worker.job import Job, parse_job
from worker.ledger import JobRecord, Ledger
from worker.parking import next_step
from worker.settings import Settings


@dataclass(frozen=True)
class Refusal:
    """One job that was not enqueued, and why.

    Attributes:
        position: 1-based line (JSON Lines) or element (JSON array) number.
        field: the dotted job field at fault, or ``(job)``.
        message: what was wrong with it.
    """

    position: int
    field: str
    message: str


@dataclass(frozen=True)
class Offer:
    """What became of one offered job.

    Attributes:
        outcome: ``enqueued``, ``duplicate`` (same key, same content: nothing
            queued), ``conflict`` (same key, other content) or ``refused``.
        key: the job's idempotency key, when the job was valid enough to
            have one.
        problems: ``(field, message)`` pairs for a refusal or a conflict.
    """

    outcome: Literal["enqueued", "duplicate", "conflict", "refused"]
    key: str | None
    problems: list[tuple[str, str]]


@dataclass
class EnqueueReport:
    """Counts and refusals of one enqueue run."""

    enqueued: int = 0
    duplicates: int = 0
    refusals: list[Refusal] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    @property
    def refused(self) -> int:
        """Number of jobs refused (a job with three problems counts once)."""
        return len({r.position for r in self.refusals})


class Producer:
    """Validates jobs and enqueues each key at most once."""

    def __init__(
        self, ledger: Ledger, app: Celery, queue: str, marker_field: str = ""
    ) -> None:
        self._ledger = ledger
        self._app = app
        self._queue = queue
        self._marker_field = marker_field

    @classmethod
    def for_settings(cls, settings: Settings, ledger: Ledger) -> Producer:
        """Return a producer on the settings' broker, queue and marker field."""
        return cls(
            ledger,
            create_app(settings),
            settings.key_prefix,
            settings.capsule_job_key_field,
        )

    def submit(self, data: Any, position: int, report: EnqueueReport) -> None:
        """Validate and enqueue one job, recording the outcome in ``report``.

        Idempotent: see :meth:`offer`.
        """
        offer = self.offer(data)
        if offer.outcome == "enqueued":
            report.enqueued += 1
            report.keys.append(offer.key or "")
        elif offer.outcome == "duplicate":
            report.duplicates += 1
        report.refusals += [Refusal(position, f, m) for f, m in offer.problems]

    def offer(self, data: Any) -> Offer:
        """Validate one job and enqueue it unless its key is known.

        Idempotent: a key already admitted with the same content is a
        duplicate and queues nothing; other content under the same key is a
        conflict. Redis and broker errors propagate (nothing is retried
        here; offering the same job again is always safe).
        """
        try:
            job = parse_job(data)
        except JobInvalid as exc:
            return Offer("refused", None, list(exc.problems))
        if self._writes_marker(job):
            message = (
                f"must not set {self._marker_field!r}: oppsync writes the job key there"
            )
            return Offer("refused", job.key, [("fields", message)])

        admission = self._ledger.admit(job)
        if admission == "conflict":
            message = f"key {job.key!r} is already taken by a job with other content"
            return Offer("conflict", job.key, [("idempotencyKey", message)])
        if admission == "duplicate":
            return Offer("duplicate", job.key, [])

        extra = {"account": job.account} if job.account else {}
        self._app.send_task(
            CREATE_TASK, args=[job.key], kwargs=extra, queue=self._queue
        )
        return Offer("enqueued", job.key, [])

    def resend(self, record: JobRecord) -> None:
        """Queue a known job's next step again (see :func:`next_step`).
        Idempotent per job key."""
        step = next_step(record)
        extra = {"account": step.account} if step.account else {}
        if step.step == "verify":
            args: list[Any] = [step.key, step.opportunity_id]
            self._app.send_task(VERIFY_TASK, args=args, kwargs=extra, queue=self._queue)
        else:
            self._app.send_task(
                CREATE_TASK, args=[step.key], kwargs=extra, queue=self._queue
            )

    def _writes_marker(self, job: Job) -> bool:
        marker = self._marker_field
        if not marker:
            return False
        return any(
            f.definition == marker or str(f.definition_id) == marker
            for f in job.fields or []
        )

    def submit_all(self, items: Iterable[tuple[int, Any]]) -> EnqueueReport:
        """Submit every ``(position, job)``; a bad job never stops the rest."""
        report = EnqueueReport()
        for position, data in items:
            if isinstance(data, Refusal):
                report.refusals.append(data)
            else:
                self.submit(data, position, report)
        return report


#: The UTF-8 byte order mark some tools write before text.
_BOM = b"\xef\xbb\xbf"


def read_jobs(stream: BinaryIO) -> Iterator[tuple[int, Any]]:
    """Yield ``(position, job or Refusal)`` from JSON Lines or a JSON array.

    Each line is decoded and parsed on its own, so a line that is not UTF-8,
    not JSON, nested too deeply or naming a field twice yields a
    :class:`Refusal` and reading goes on. Numbers with a fraction are read
    as :class:`Decimal`, so amounts stay exact.
    """
    data = stream.read().removeprefix(_BOM)
    if is_json_array(data):
        yield from _array_items(data)
        return
    for number, line in enumerate(data.splitlines(), start=1):
        if line.strip():
            yield number, decode_json(line, number)


def is_json_array(data: bytes) -> bool:
    """Return whether ``data`` holds a JSON array (rather than JSON Lines)."""
    return data.removeprefix(_BOM).lstrip().startswith(b"[")


def decode_json(raw: bytes, position: int) -> Any:
    """Return the JSON value in ``raw`` (a UTF-8 byte order mark allowed),
    or a :class:`Refusal` at ``position`` saying why it is not one (never
    raises)."""
    try:
        return json.loads(
            raw.removeprefix(_BOM).decode("utf-8"),
            parse_float=Decimal,
            object_pairs_hook=_object_without_repeats,
        )
    except UnicodeDecodeError as exc:
        return Refusal(
            position, "(encoding)", f"not valid UTF-8: {exc.reason} at byte {exc.start}"
        )
    except RecursionError:
        return Refusal(position, "(json)", "nested too deeply")
    except ValueError as exc:
        return Refusal(position, "(json)", f"not valid JSON: {exc}")


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Refuse an object that names a field twice (which value is meant?)."""
    obj: dict[str, Any] = {}
    for name, value in pairs:
        if name in obj:
            raise ValueError(f"field {name!r} appears twice in one object")
        obj[name] = value
    return obj


def _array_items(data: bytes) -> Iterator[tuple[int, Any]]:
    items = decode_json(data, 1)
    if isinstance(items, Refusal):
        yield 1, items
        return
    yield from enumerate(items, start=1)
