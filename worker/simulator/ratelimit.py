"""Fixed-window request budget per Capsule user.

Capsule allows 4,000 requests per hour per user and reports the budget in
``X-RateLimit-*`` headers on every answer (reference §6). Windows here are
aligned to an anchor taken when the limiter is configured, so a
reconfiguration starts fresh windows. A rejected request does not spend
budget. Every window's accepted and rejected counts are kept so a test can
prove that no window ever let more than ``limit`` requests through.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Requests allowed per window by default (Capsule's documented budget).
DEFAULT_LIMIT = 4000
#: Window length in seconds by default (one hour).
DEFAULT_WINDOW_S = 3600.0


@dataclass(frozen=True)
class RateDecision:
    """The outcome of one admission check.

    Attributes:
        allowed: Whether the request may proceed.
        limit: Requests allowed per window.
        remaining: Requests left in the current window after this one.
        reset_at_epoch_s: Whole UTC epoch second at or after the window end.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_at_epoch_s: int

    def headers(self) -> dict[str, str]:
        """Return the ``X-RateLimit-*`` headers for this decision."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at_epoch_s),
        }


@dataclass
class WindowCount:
    """Accepted and rejected requests of one user in one window."""

    accepted: int = 0
    rejected: int = 0


class FixedWindowRateLimiter:
    """Admits at most ``limit`` requests per user per window.

    Args:
        limit: Requests allowed per window; at least 1.
        window_s: Window length in seconds; above 0.
        clock: Source of UTC epoch seconds, replaceable in tests.
    """

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        window_s: float = DEFAULT_WINDOW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self.configure(limit, window_s)

    def configure(self, limit: int, window_s: float) -> None:
        """Set a new budget and forget every window counted so far.

        Raises:
            ValueError: ``limit`` is below 1 or ``window_s`` not above 0.
        """
        if limit < 1 or window_s <= 0:
            raise ValueError(
                f"Expected limit >= 1 and window_s > 0, got {limit}, {window_s}."
            )

        self.limit = limit
        self.window_s = float(window_s)
        self._anchor_epoch_s = float(math.floor(self._clock()))
        self._windows: dict[int, dict[int, WindowCount]] = {}

    def admit(self, user_id: int) -> RateDecision:
        """Count one request of ``user_id`` and decide whether it may pass."""
        index = int((self._clock() - self._anchor_epoch_s) // self.window_s)
        per_user = self._windows.setdefault(user_id, {})
        count = per_user.get(index)
        if count is None:
            count = per_user[index] = WindowCount()

        allowed = count.accepted < self.limit
        if allowed:
            count.accepted += 1
        else:
            count.rejected += 1

        return RateDecision(
            allowed=allowed,
            limit=self.limit,
            remaining=self.limit - count.accepted,
            reset_at_epoch_s=math.ceil(self._window_start(index + 1)),
        )

    def reset(self) -> None:
        """Start fresh windows with the current budget."""
        self.configure(self.limit, self.window_s)

    def windows(self) -> dict[str, list[dict[str, float | int]]]:
        """Return every counted window per user id, oldest first."""
        return {
            str(user_id): [
                {
                    "windowStart": self._window_start(index),
                    "accepted": count.accepted,
                    "rejected": count.rejected,
                }
                for index, count in sorted(per_user.items())
            ]
            for user_id, per_user in self._windows.items()
        }

    def max_accepted(self) -> int:
        """Return the most requests any user got through in one window."""
        counts = (c.accepted for w in self._windows.values() for c in w.values())
        return max(counts, default=0)

    def _window_start(self, index: int) -> float:
        return self._anchor_epoch_s + index * self.window_s
