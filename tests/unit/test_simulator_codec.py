"""Exact money amounts in the simulator's JSON."""

from decimal import Decimal

import pytest

from worker.simulator.jsoncodec import MalformedJSON, dumps, loads


def test_fractions_are_read_as_decimals() -> None:
    """Non-integer numbers arrive as Decimal with every digit kept."""
    assert loads(b'{"amount": 1054.10}') == {"amount": Decimal("1054.10")}


def test_decimals_are_written_verbatim() -> None:
    """A Decimal is written with its own digits, never through float."""
    payload = {"a": Decimal("1054.10"), "b": [Decimal("0.1")], "c": "text"}

    assert dumps(payload) == '{"a":1054.10,"b":[0.1],"c":"text"}'


def test_look_alike_strings_stay_strings() -> None:
    """A client string resembling the internal marker is not unquoted."""
    assert dumps({"s": "~exact-decimal-0~1"}) == '{"s":"~exact-decimal-0~1"}'


def test_malformed_body_is_reported() -> None:
    """Invalid JSON raises MalformedJSON."""
    with pytest.raises(MalformedJSON):
        loads(b"{nope")
