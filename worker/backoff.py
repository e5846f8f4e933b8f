"""Retry delays for transient failures: exponential, jittered, never tiny.

The delay for attempt ``n`` (1-based) grows as ``min_s * factor ** (n - 1)``
up to ``max_s``; jitter then picks a value in the upper half of that step
("equal jitter"), so two retries are never closer than half the step. Full
jitter is avoided on purpose: it can shorten a long backoff to almost zero
(design note 9).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with equal jitter.

    Attributes:
        min_s: delay of the first retry before jitter, in seconds.
        factor: growth per attempt.
        max_s: largest delay, in seconds.
    """

    min_s: float = 2.0
    factor: float = 2.0
    max_s: float = 120.0

    def step_s(self, attempt: int) -> float:
        """Return the un-jittered delay after ``attempt`` failures."""
        exponent = max(attempt - 1, 0)
        return float(min(self.max_s, self.min_s * self.factor**exponent))

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Return a jittered delay in ``[step / 2, step]`` seconds."""
        step = self.step_s(attempt)
        draw = (rng or random).random()
        return step / 2 + draw * step / 2
