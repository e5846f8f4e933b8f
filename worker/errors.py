"""One error tree; its two branches encode the retry decision.

::

    OppsyncError
    ├── ConfigurationError        settings that cannot work; refuse to start
    ├── TransientError            retry later, the job is not at fault
    │   ├── CapsuleUnavailable    5xx or network failure, nothing created
    │   ├── OutcomeUnknown        the create may have happened: reconcile first
    │   ├── RateLimited           the shared budget is spent until a reset
    │   ├── CapsuleUnauthorized   401/403: the token, not the job, is wrong
    │   └── LeaseHeld             another worker is on this job right now
    └── PermanentError            the job cannot succeed; dead-letter it
        ├── CapsuleRejected       400, 404 or 422 with Capsule's own message
        ├── LookupFailed          a name matched nothing or several things
        ├── RetriesExhausted      transient failures went on too long
        ├── DeadlinePassed        still waiting at the job's deadline
        ├── WorkerLost            the job's task kept killing its worker
        └── JobInvalid            the payload breaks the job schema

Lower layers raise these; only the task boundary logs and decides.
"""

from __future__ import annotations


class OppsyncError(Exception):
    """Root of every error oppsync raises on purpose."""


class ConfigurationError(OppsyncError):
    """The settings cannot work; the process refuses to start."""


class TransientError(OppsyncError):
    """A failure worth retrying: the same request may succeed later.

    Attributes:
        wait_s: the earliest sensible retry delay in seconds, when known.
    """

    def __init__(self, message: str, *, wait_s: float | None = None) -> None:
        super().__init__(message)
        self.wait_s = wait_s


class CapsuleUnavailable(TransientError):
    """Capsule answered 5xx, or the request never reached it."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        wait_s: float | None = None,
    ) -> None:
        super().__init__(message, wait_s=wait_s)
        self.status_code = status_code


class OutcomeUnknown(CapsuleUnavailable):
    """A create was sent but no answer says whether Capsule made it.

    Raised for read timeouts, connections lost after sending, and 502/503/504
    answers to a POST. The next attempt must look for the record first.
    """


class RateLimited(TransientError):
    """The shared rate budget for a Capsule user is spent until ``wait_s``."""


class CapsuleUnauthorized(TransientError):
    """Capsule refused the token (401) or its scope (403).

    Not the job's fault: the job waits for a working token instead of dying.
    """

    def __init__(
        self, message: str, *, status_code: int, wait_s: float | None = None
    ) -> None:
        super().__init__(message, wait_s=wait_s)
        self.status_code = status_code


class LeaseHeld(TransientError):
    """Another worker holds the job's lease; try again when it ends."""


class PermanentError(OppsyncError):
    """The job cannot succeed as given; it ends in the dead-letter store.

    Attributes:
        reason: a short stable class for grouping (``rejected``, ``lookup``...).
    """

    reason = "permanent"


class CapsuleRejected(PermanentError):
    """Capsule refused the request with 400, 404 or 422."""

    reason = "rejected"

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class LookupFailed(PermanentError):
    """A name given in the job matched no record, or more than one."""

    reason = "lookup"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class RetriesExhausted(PermanentError):
    """Transient failures went on past the configured number of attempts."""

    reason = "exhausted"


class DeadlinePassed(PermanentError):
    """The job was still waiting (for the rate limit, a token, Capsule) when
    its overall deadline passed."""

    reason = "deadline"


class WorkerLost(PermanentError):
    """The job's task died with its worker process too many times."""

    reason = "worker_lost"


class JobInvalid(PermanentError):
    """The job payload does not satisfy the job schema.

    Attributes:
        problems: ``(field, message)`` pairs, one per broken rule, where
            ``field`` is a dotted path such as ``value.currency``.
    """

    reason = "validation"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        text = "; ".join(f"{field}: {message}" for field, message in problems)
        super().__init__(text or "the job is invalid")
        self.problems = problems


def spends_attempt(exc: TransientError) -> bool:
    """Return whether a transient error counts against the retry budget.

    Waiting for the rate limit, a working token or another worker's lease is
    not a failure of the job (design note 9).
    """
    return not isinstance(exc, RateLimited | CapsuleUnauthorized | LeaseHeld)
