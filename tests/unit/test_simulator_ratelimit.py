"""The simulator's fixed-window rate limiter."""

from worker.simulator.ratelimit import FixedWindowRateLimiter


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now_s: float = 1_000.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def test_admits_up_to_the_limit_then_rejects() -> None:
    """The limit-th request passes with Remaining 0 and the next is rejected."""
    limiter = FixedWindowRateLimiter(limit=2, window_s=10, clock=FakeClock())

    decisions = [limiter.admit(1) for _ in range(3)]

    assert [d.allowed for d in decisions] == [True, True, False]
    assert [d.remaining for d in decisions] == [1, 0, 0]


def test_rejected_requests_spend_no_budget() -> None:
    """Rejections are counted apart and never reduce the next window."""
    clock = FakeClock()
    limiter = FixedWindowRateLimiter(limit=1, window_s=10, clock=clock)
    for _ in range(4):
        limiter.admit(1)

    windows = limiter.windows()["1"]

    assert windows == [{"windowStart": 1000.0, "accepted": 1, "rejected": 3}]


def test_reset_header_is_the_window_end_in_whole_seconds() -> None:
    """X-RateLimit-Reset is the epoch second at which the window ends."""
    clock = FakeClock(1_000.4)
    limiter = FixedWindowRateLimiter(limit=5, window_s=60, clock=clock)

    headers = limiter.admit(1).headers()

    assert headers == {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "4",
        "X-RateLimit-Reset": "1060",
    }


def test_new_window_restores_the_budget() -> None:
    """At the reset time a new window starts with the full limit."""
    clock = FakeClock()
    limiter = FixedWindowRateLimiter(limit=1, window_s=10, clock=clock)
    first = limiter.admit(1)
    clock.now_s = first.reset_at_epoch_s

    assert limiter.admit(1).allowed
    assert limiter.max_accepted() == 1


def test_users_have_separate_budgets() -> None:
    """One user's exhausted window does not affect another user."""
    limiter = FixedWindowRateLimiter(limit=1, window_s=10, clock=FakeClock())
    limiter.admit(1)

    assert not limiter.admit(1).allowed
    assert limiter.admit(2).allowed


def test_configure_starts_fresh_windows() -> None:
    """Changing the budget forgets what earlier windows counted."""
    limiter = FixedWindowRateLimiter(limit=1, window_s=10, clock=FakeClock())
    limiter.admit(1)

    limiter.configure(3, 5)

    assert limiter.windows() == {}
    assert limiter.admit(1).remaining == 2
