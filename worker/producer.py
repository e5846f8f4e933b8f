"""Producing jobs: validate, admit once in the ledger, then queue the task.

Producers need no Capsule access and no worker code: the task is sent by
its wire name, with the job key as its only argument.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TextIO

from celery import Celery

from worker.celery_app import CREATE_TASK
from worker.errors import JobInvalid
from worker.job import parse_job
from worker.ledger import Ledger


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

    def __init__(self, ledger: Ledger, app: Celery, queue: str) -> None:
        self._ledger = ledger
        self._app = app
        self._queue = queue

    def submit(self, data: Any, position: int, report: EnqueueReport) -> None:
        """Validate and enqueue one job, recording the outcome in ``report``.

        Idempotent: a key already admitted with the same content is counted
        as a duplicate and queues nothing; other content under the same key
        is refused as a conflict.
        """
        try:
            job = parse_job(data)
        except JobInvalid as exc:
            report.refusals += [Refusal(position, f, m) for f, m in exc.problems]
            return
        admission = self._ledger.admit(job)
        if admission == "duplicate":
            report.duplicates += 1
        elif admission == "conflict":
            message = f"key {job.key!r} is already taken by a job with other content"
            report.refusals.append(Refusal(position, "idempotencyKey", message))
        else:
            self._app.send_task(CREATE_TASK, args=[job.key], queue=self._queue)
            report.enqueued += 1
            report.keys.append(job.key)

    def submit_all(self, items: Iterable[tuple[int, Any]]) -> EnqueueReport:
        """Submit every ``(position, job)``; a bad job never stops the rest."""
        report = EnqueueReport()
        for position, data in items:
            if isinstance(data, Refusal):
                report.refusals.append(data)
            else:
                self.submit(data, position, report)
        return report


def read_jobs(stream: TextIO) -> Iterator[tuple[int, Any]]:
    """Yield ``(position, job or Refusal)`` from JSON Lines or a JSON array.

    Numbers with a fraction are read as :class:`Decimal`, so amounts stay
    exact. A line that is not JSON yields a :class:`Refusal` and reading
    goes on with the next line.
    """
    text = stream.read()
    if text.lstrip().startswith("["):
        yield from _array_items(text)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line, parse_float=Decimal)
        except ValueError as exc:
            yield number, Refusal(number, "(json)", f"not valid JSON: {exc}")


def _array_items(text: str) -> Iterator[tuple[int, Any]]:
    try:
        items = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        yield 1, Refusal(1, "(json)", f"not a valid JSON array: {exc}")
        return
    yield from enumerate(items, start=1)
