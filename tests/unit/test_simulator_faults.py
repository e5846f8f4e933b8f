"""Matching and counting of injected faults."""

import pytest

from worker.simulator.faults import FaultInjector, FaultRule, parse_fault


def test_path_matches_exactly_or_by_prefix() -> None:
    """A plain path matches itself only; a trailing star matches a prefix."""
    exact = FaultRule("error", path="/opportunities")
    prefix = FaultRule("error", path="/opportunities*")

    assert exact.matches("POST", "/opportunities")
    assert not exact.matches("GET", "/opportunities/5")
    assert prefix.matches("GET", "/opportunities/5")


def test_count_limits_fires_and_kinds_are_counted() -> None:
    """A rule with count 2 fires twice; each fire counts toward its kind."""
    injector = FaultInjector()
    injector.replace([FaultRule("latency", method="GET", count=2)])

    picks = [injector.pick("GET", "/users") for _ in range(3)]

    assert [p is not None for p in picks] == [True, True, False]
    assert injector.fired_by_kind["latency"] == 2
    assert injector.pick("POST", "/users") is None


def test_rate_draws_repeat_with_the_same_seed() -> None:
    """The same seed gives the same sequence of fires."""

    def fires(seed: int) -> list[bool]:
        injector = FaultInjector()
        injector.replace([FaultRule("error", rate=0.3)], seed=seed)
        return [injector.pick("GET", "/x") is not None for _ in range(50)]

    assert fires(3) == fires(3)
    assert 0 < sum(fires(3)) < 50


def test_parse_fault_applies_defaults() -> None:
    """A bare kind gets rate 1, status 503 and no method or path filter."""
    rule = parse_fault({"kind": "error", "method": "post"})

    assert (rule.method, rule.path, rule.rate, rule.status) == ("POST", None, 1.0, 503)


def test_parse_fault_refuses_unknown_fields() -> None:
    """A misspelt field (say ``probability`` for ``rate``) is refused, not
    silently dropped into a rule that fires every time."""
    with pytest.raises(ValueError, match="probability"):
        parse_fault({"kind": "error", "probability": 0.05})
