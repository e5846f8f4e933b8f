"""Backoff delays and the parsing of rate-limit headers."""

from __future__ import annotations

import random

import pytest

from worker.backoff import Backoff
from worker.ratebudget import MAX_WAIT_S, rate_limit_wait_s

NOW = 1_800_000_000.0


def test_backoff_grows_and_caps() -> None:
    """The step doubles from the minimum and stops at the cap."""
    backoff = Backoff(min_s=2, factor=2, max_s=20)

    assert [backoff.step_s(n) for n in range(1, 6)] == [2, 4, 8, 16, 20]


def test_backoff_jitter_never_goes_below_half_the_step() -> None:
    """Jittered delays stay within [step/2, step], never near zero."""
    backoff = Backoff(min_s=2, factor=2, max_s=60)
    rng = random.Random(1)

    delays = [backoff.delay_s(n, rng) for n in range(1, 10) for _ in range(50)]

    assert min(delays) >= 1.0
    assert max(delays) <= 60.0


@pytest.mark.parametrize(
    ("headers", "expected_s"),
    [
        ({"X-RateLimit-Reset": str(int(NOW) + 42)}, 42.0),
        ({"X-RateLimit-Reset": str(int(NOW) - 5)}, 5.0),
        ({"X-RateLimit-Reset": str(int(NOW))}, 5.0),
        ({"X-RateLimit-Reset": str(int(NOW) + 10**9)}, MAX_WAIT_S),
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}, 5.0),
        ({"Retry-After": "soon"}, 5.0),
        ({"Retry-After": "nan"}, 5.0),
        ({}, 5.0),
    ],
)
def test_wait_after_429(headers: dict[str, str], expected_s: float) -> None:
    """The reset epoch wins, Retry-After is honoured, nonsense falls back."""
    assert rate_limit_wait_s(headers, NOW) == pytest.approx(expected_s)


def test_retry_after_http_date_in_the_future() -> None:
    """An HTTP-date Retry-After waits until that moment."""
    headers = {"Retry-After": "Fri, 15 Jan 2027 08:00:30 GMT"}
    now = 1_800_000_000.0  # 2027-01-15T08:00:00Z

    assert rate_limit_wait_s(headers, now) == pytest.approx(30.0)
