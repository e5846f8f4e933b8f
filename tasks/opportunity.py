"""Thin Celery tasks: bind log context, run a use case, retry or dead-letter.

Business rules live in :mod:`worker`; these functions only decide what a
raised error means for the message.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import redis
import structlog
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from worker.backoff import Backoff
from worker.celery_app import CREATE_TASK, SWEEP_TASK, VERIFY_TASK, app
from worker.creation import CreateOutcome
from worker.errors import (
    CapsuleUnauthorized,
    DeadlinePassed,
    LeaseHeld,
    PermanentError,
    RateLimited,
    TransientError,
    WorkerLost,
    spends_attempt,
)
from worker.parking import ParkedStep
from worker.runtime import Runtime, runtime
from worker.sweep import sweep as run_sweep

log = structlog.get_logger(__name__)
T = TypeVar("T")

#: Seconds between pings while Redis is unreachable.
REDIS_POLL_S = 0.5


@app.task(name=CREATE_TASK, bind=True, max_retries=None)
def create_opportunity(
    self: Task[Any, Any], job_key: str, account: str | None = None
) -> None:
    """Create the job's opportunity once, then schedule its verification.

    ``account`` names the Capsule account (None: the default one).
    """
    rt = runtime()
    holder = f"{socket.gethostname()}:{os.getpid()}:{self.request.id}"
    with _job_context(job_key, "create", self.request.retries):
        step = ParkedStep("create", job_key, account=account)
        outcome = _guard(
            self,
            rt,
            step,
            lambda: rt.account(account).creation.run(job_key, holder),
            lambda losses: _create_lost(rt, step, losses),
        )
        if outcome is None or outcome.opportunity_id is None:
            return
        if outcome.via in ("posted", "adopted"):
            log.info(
                "opportunity_created",
                opportunity_id=outcome.opportunity_id,
                via=outcome.via,
            )
        send_step(
            ParkedStep("verify", job_key, outcome.opportunity_id, account),
            countdown_s=rt.settings.verify_delay_s,
        )


@app.task(name=VERIFY_TASK, bind=True, max_retries=None)
def verify_opportunity(
    self: Task[Any, Any], job_key: str, opportunity_id: int, account: str | None = None
) -> None:
    """Check owner and team of the job's opportunity; repair both if needed."""
    rt = runtime()
    with _job_context(job_key, "verify", self.request.retries):
        structlog.contextvars.bind_contextvars(opportunity_id=opportunity_id)
        step = ParkedStep("verify", job_key, opportunity_id, account)
        final = _guard(
            self,
            rt,
            step,
            lambda: _verify(step, rt),
            _verify_lost,
        )
        if final == "repaired":
            log.info("owner_team_repaired")
        elif final == "verified":
            log.info("opportunity_verified")


@app.task(name=SWEEP_TASK)
def sweep() -> None:
    """Resume parked jobs, rescue lost ones, prune old ones (Celery beat)."""
    report = run_sweep(runtime(), send_step)
    if report.resumed or report.rescued or report.pruned:
        log.info(
            "sweep_finished",
            resumed=report.resumed,
            rescued=report.rescued,
            pruned=report.pruned,
        )


def send_step(step: ParkedStep, countdown_s: float = 0.0) -> None:
    """Send a job's step as its task (the account only when not default)."""
    extra = {"account": step.account} if step.account else {}
    if step.step == "verify" and step.opportunity_id is not None:
        verify_opportunity.apply_async(
            (step.key, step.opportunity_id), extra, countdown=countdown_s
        )
    else:
        create_opportunity.apply_async((step.key,), extra, countdown=countdown_s)


def _create_lost(rt: Runtime, step: ParkedStep, losses: int) -> CreateOutcome:
    """The create died with its worker too often: adopt what a lost run may
    have created (looking once, so a lookup that kills cannot loop), else
    give up."""
    if losses == rt.settings.max_worker_losses:
        adopted = rt.account(step.account).creation.adopt_lost(step.key)
        if adopted is not None:
            return adopted
    raise WorkerLost(f"worker lost {losses} times while running this job")


def _verify_lost(losses: int) -> str | None:
    raise WorkerLost(f"worker lost {losses} times while verifying this job")


def _verify(step: ParkedStep, rt: Runtime) -> str | None:
    verification = rt.account(step.account).verification
    return verification.run(step.key, step.opportunity_id or 0)


def _guard(
    task: Task[Any, Any],
    rt: Runtime,
    step: ParkedStep,
    run: Callable[[], T],
    on_lost: Callable[[int], T],
) -> T | None:
    """Run ``run``; turn transient errors into retries (or parking, for long
    waits) and permanent ones into exactly one dead letter. Counts runs lost
    with their worker: after too many, ``on_lost(losses)`` runs instead."""
    key = step.key
    unfinished = rt.ledger.begin_run(key, step.step)
    if unfinished < 0:
        log.warning("job_unknown")  # its record was pruned or Redis lost it
        return None
    try:
        losses = unfinished - 1
        if losses >= rt.settings.max_worker_losses:
            return on_lost(losses)
        return run()
    except TransientError as exc:
        _retry_later(task, rt, step, exc)
        return None
    except PermanentError as exc:
        _dead_letter(rt, key, exc.reason, str(exc), getattr(exc, "status_code", None))
        return None
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        # Returning while Redis is away makes Celery's ack fail, after which
        # the consumer can stall for good (design note 5): wait for Redis.
        log.warning("redis_unavailable", error=str(exc))
        _await_redis(rt)
        raise task.retry(
            countdown=rt.settings.backoff_min_s, max_retries=None
        ) from None
    except SoftTimeLimitExceeded:
        log.warning("job_step_timed_out")
        raise task.retry(
            countdown=rt.settings.backoff_min_s, max_retries=None
        ) from None
    except Exception as exc:
        # The boundary: no payload and no Capsule answer may crash a worker.
        log.error("job_step_crashed", exc_info=True)
        _dead_letter(rt, key, "internal", f"{type(exc).__name__}: {exc}", None)
        return None
    finally:
        with suppress(redis.ConnectionError, redis.TimeoutError):
            rt.ledger.end_run(key, step.step)


def _await_redis(rt: Runtime) -> None:
    """Wait until Redis answers again, for at most half the task time limit."""
    deadline = time.monotonic() + rt.settings.task_time_limit_s / 2
    while time.monotonic() < deadline:
        with suppress(redis.ConnectionError, redis.TimeoutError):
            if rt.redis.ping():
                return
        time.sleep(REDIS_POLL_S)


def _retry_later(
    task: Task[Any, Any], rt: Runtime, step: ParkedStep, exc: TransientError
) -> None:
    """Retry after a transient error: a countdown for short waits, parking
    for long ones, a dead letter once the job's deadline has passed.

    Raises:
        celery.exceptions.Retry: a retry was scheduled.
    """
    if _past_deadline(rt, step.key, exc) or _verify_exhausted(rt, step, exc):
        return
    wait_s = _retry_wait_s(rt, exc, task.request.retries)
    fields = {
        "error": str(exc),
        "error_class": type(exc).__name__,
        "wait_s": round(wait_s, 2),
    }
    if isinstance(exc, CapsuleUnauthorized):
        log.error("capsule_token_refused", status_code=exc.status_code, **fields)
    if wait_s > rt.settings.max_countdown_s:
        rt.parking.park(step, wait_s)
        log.info("job_parked", **fields)
        return
    log.info("job_retry_scheduled", **fields)
    raise task.retry(countdown=wait_s, max_retries=None) from None


def _verify_exhausted(rt: Runtime, step: ParkedStep, exc: TransientError) -> bool:
    """Count a failed verification; dead-letter the job when they ran out.

    (The create counts its own failures in the ledger's release script.)
    """
    if step.step != "verify" or not spends_attempt(exc):
        return False
    failures = rt.ledger.count_failure(step.key, "verify")
    if failures < rt.settings.max_attempts:
        return False
    message = (
        f"opportunity {step.opportunity_id} exists, but its owner and team could "
        f"not be verified after {failures} failed attempts; last error: {exc}"
    )
    _dead_letter(rt, step.key, "exhausted", message, None)
    return True


def _past_deadline(rt: Runtime, key: str, exc: TransientError) -> bool:
    """Dead-letter a job still waiting when its overall deadline has passed.

    Returns:
        True when the job was given up.
    """
    record = rt.ledger.get(key)
    if record is None:
        return False
    age_s = time.time() - record.created_at_ms / 1000
    if age_s <= rt.settings.job_deadline_s:
        return False
    waiting_for = "the rate limit" if isinstance(exc, RateLimited) else "Capsule"
    late = DeadlinePassed(
        f"ran out of time waiting for {waiting_for}: {age_s:.0f} s since enqueue, "
        f"deadline {rt.settings.job_deadline_s:g} s; last error: {exc}"
    )
    _dead_letter(rt, key, late.reason, str(late), None)
    return True


def _dead_letter(
    rt: Runtime, key: str, reason: str, message: str, status: int | None
) -> None:
    if rt.ledger.kill(key, reason, message, status_code=status):
        log.warning(
            "job_dead_lettered", reason=reason, error=message, status_code=status
        )


def _retry_wait_s(rt: Runtime, exc: TransientError, retries: int) -> float:
    """Return how long to wait before the next try, in seconds (waits over
    the countdown cap are parked by the caller)."""
    settings = rt.settings
    if isinstance(exc, RateLimited | LeaseHeld | CapsuleUnauthorized) and exc.wait_s:
        wait_s = exc.wait_s + 0.5
    elif isinstance(exc, CapsuleUnauthorized):
        wait_s = settings.auth_recheck_s
    else:
        backoff = Backoff(
            settings.backoff_min_s, settings.backoff_factor, settings.backoff_max_s
        )
        wait_s = backoff.delay_s(retries + 1)
    return wait_s


@contextmanager
def _job_context(key: str, step: str, retries: int) -> Iterator[None]:
    """Bind job fields to every log line of a task, and clear them after."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(job_key=key, step=step, retry=retries)
    try:
        yield
    finally:
        structlog.contextvars.clear_contextvars()
