"""A Capsule user's request budget, shared in Redis by every process.

Capsule allows a number of requests per window per user and reports the
state of the window on every response (``X-RateLimit-Limit``,
``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` as epoch seconds). Every
request takes one unit from the budget before it is sent; every response
folds its headers back in, so the server's view corrects ours. A 429 pauses
the whole fleet until the reset, without each process discovering it.

Keys, under prefix ``p``: ``p:rate:{account}`` (hash), where ``account`` is
a hash of the token, never the token itself.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from pathlib import Path

import redis

from worker.errors import RateLimited

#: Longest wait any header may impose, in seconds (a window is an hour).
MAX_WAIT_S = 3700.0

_LUA = Path(__file__).parent / "lua"


def account_id(token: str) -> str:
    """Return a stable, non-secret name for the Capsule user of ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class RedisRateBudget:
    """The shared budget of one Capsule account.

    Args:
        client: Redis connection.
        prefix: key prefix.
        account: name from :func:`account_id`.
        reserve: requests left unused at the end of each window, as a
            margin for other clients of the same Capsule user.
        window_s: the length of Capsule's rate window (an hour), used to
            spread the budget evenly over it.
        burst: the share of the limit that may run ahead of the even pace
            (1 turns pacing off).
        auth_recheck_s: how long the fleet pauses after Capsule refused the
            token (401/403) before the next request tries it again.
        max_inline_wait_s: waits up to this long happen in the calling
            thread; longer ones raise :class:`RateLimited`.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        account: str,
        *,
        reserve: int = 0,
        window_s: float = 3600.0,
        burst: float = 0.05,
        auth_recheck_s: float = 60.0,
        max_inline_wait_s: float = 5.0,
    ) -> None:
        self._auth_recheck_s = auth_recheck_s
        self._key = f"{prefix}:rate:{account}"
        self._reserve = reserve
        self._pacing = (window_s, burst)
        self._max_inline_wait_s = max_inline_wait_s
        self._take = client.register_script((_LUA / "rate_take.lua").read_text())
        self._observe = client.register_script((_LUA / "rate_observe.lua").read_text())

    def acquire(self) -> None:
        """Take one request, sleeping through short waits.

        Raises:
            RateLimited: the budget is spent for longer than the inline wait;
                ``wait_s`` says for how long. Waiting is not a failure.
        """
        while True:
            args = [time.time(), self._reserve, *self._pacing]
            wait_s = float(self._take(keys=[self._key], args=args))
            if wait_s <= 0:
                return
            if wait_s > self._max_inline_wait_s:
                raise RateLimited(
                    f"Capsule rate budget spent; next request in {wait_s:.1f} s.",
                    wait_s=wait_s,
                )
            time.sleep(wait_s)

    def observe(
        self, headers: Mapping[str, str], *, status_code: int = 200
    ) -> float | None:
        """Fold a response's headers into the budget.

        A 429 pauses every process using this account until the reset; a
        401 or 403 pauses them for ``auth_recheck_s``, after which the
        next request tests the token again.

        Args:
            headers: the response headers (case-insensitive mapping).
            status_code: the response status (0 when no answer came).

        Returns:
            The pause in seconds when the fleet was paused, else None.
        """
        now_s = time.time()
        limit, remaining, reset_at = _rate_headers(headers)
        pause_s: float | None = None
        if status_code == 429:
            pause_s = rate_limit_wait_s(headers, now_s)
        elif status_code in (401, 403):
            pause_s = self._auth_recheck_s
        pause_until = "" if pause_s is None else str(now_s + pause_s)
        args = [limit, remaining, reset_at, pause_until]
        self._observe(keys=[self._key], args=args)
        return pause_s


class LocalRateBudget:
    """No shared budget: each process learns of a 429 by itself.

    Only for comparing against the shared budget (``OPPSYNC_RATE_BUDGET=off``);
    a fleet run this way trips Capsule's limit.
    """

    def __init__(self, auth_recheck_s: float = 60.0) -> None:
        self._auth_recheck_s = auth_recheck_s

    def acquire(self) -> None:
        """Never wait."""

    def observe(
        self, headers: Mapping[str, str], *, status_code: int = 200
    ) -> float | None:
        """Return the pause a 429, 401 or 403 calls for; share nothing."""
        if status_code == 429:
            return rate_limit_wait_s(headers, time.time())
        if status_code in (401, 403):
            return self._auth_recheck_s
        return None


def _rate_headers(headers: Mapping[str, str]) -> tuple[str, str, str]:
    try:
        limit = int(headers.get("X-RateLimit-Limit", ""))
        remaining = int(headers.get("X-RateLimit-Remaining", ""))
        reset_at = float(headers.get("X-RateLimit-Reset", ""))
    except ValueError:
        return "", "", ""
    return str(limit), str(remaining), str(reset_at)


def rate_limit_wait_s(
    headers: Mapping[str, str], now_s: float, fallback_s: float = 5.0
) -> float:
    """Return how long to pause after a 429, in seconds.

    ``X-RateLimit-Reset`` (epoch seconds) wins; a ``Retry-After`` is honoured
    when present (seconds, a fraction, or an HTTP date); a reset in the past,
    a date in the past or garbage falls back to ``fallback_s``. The result is
    capped at :data:`MAX_WAIT_S`.
    """
    for candidate in (_reset_wait_s(headers, now_s), _retry_after_s(headers, now_s)):
        if candidate is not None and candidate > 0:
            return min(candidate, MAX_WAIT_S)
    return fallback_s


def _reset_wait_s(headers: Mapping[str, str], now_s: float) -> float | None:
    try:
        return float(headers.get("X-RateLimit-Reset", "")) - now_s
    except ValueError:
        return None


def _retry_after_s(headers: Mapping[str, str], now_s: float) -> float | None:
    raw = headers.get("Retry-After", "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(raw).timestamp() - now_s
    except (TypeError, ValueError, IndexError):
        return None
