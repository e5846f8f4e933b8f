"""Reading job files: every bad line is refused on its own, never fatal."""

from __future__ import annotations

import io

import pytest

from worker.errors import ConfigurationError
from worker.job import parse_job
from worker.producer import Refusal, read_jobs
from worker.settings import Settings

GOOD = b'{"name": "a", "partyId": 1, "milestoneId": 2}'


def read(data: bytes) -> list[tuple[int, object]]:
    """Return what ``read_jobs`` yields for ``data``."""
    return list(read_jobs(io.BytesIO(data)))


def refusal_fields(items: list[tuple[int, object]]) -> dict[int, str]:
    """Map line number to the refused field, for refused lines only."""
    return {n: r.field for n, r in items if isinstance(r, Refusal)}


def test_bad_lines_are_refused_and_good_ones_kept() -> None:
    """Invalid UTF-8, broken JSON, repeats and deep nesting each refuse one line."""
    deep = b'{"description": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    data = b"\n".join(
        [
            GOOD,
            b"\xff\xfe\x00garbage",
            b"{nope",
            GOOD,
            b'{"name": "a", "name": "b"}',
            deep,
            GOOD,
        ]
    )

    items = read(data)

    assert refusal_fields(items) == {
        2: "(encoding)",
        3: "(json)",
        5: "(json)",
        6: "(json)",
    }
    assert [n for n, r in items if isinstance(r, dict)] == [1, 4, 7]


def test_byte_order_mark_is_ignored() -> None:
    """A UTF-8 byte order mark at the start does not spoil the first line."""
    assert refusal_fields(read(b"\xef\xbb\xbf" + GOOD)) == {}


def test_blank_lines_are_skipped_and_numbering_kept() -> None:
    """Blank lines count for line numbers but are not jobs."""
    assert [n for n, _ in read(b"\n" + GOOD + b"\n\n" + GOOD + b"\n")] == [2, 4]


def test_array_elements_are_numbered() -> None:
    """A JSON array yields its elements, numbered from 1."""
    assert [n for n, _ in read(b"[" + GOOD + b", 5]")] == [1, 2]


def test_lone_surrogate_is_refused() -> None:
    """Text that is not valid Unicode is refused instead of crashing the hash."""
    [(_, data)] = read(b'{"name": "x\\ud800", "partyId": 1, "milestoneId": 2}')

    with pytest.raises(Exception, match="lone surrogate"):
        parse_job(data)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"OPPSYNC_MAX_ATTEMPTS": "abc"}, "OPPSYNC_MAX_ATTEMPTS must be an integer"),
        (
            {"OPPSYNC_VERIFY_DELAY_S": "-5"},
            "OPPSYNC_VERIFY_DELAY_S must not be negative",
        ),
    ],
)
def test_bad_settings_are_refused(env: dict[str, str], fragment: str) -> None:
    """A setting of the wrong type or sign is refused, naming the variable."""
    with pytest.raises(ConfigurationError, match=fragment):
        Settings.from_env(env)


def test_broker_bounds_are_checked() -> None:
    """A countdown that could outlive the visibility timeout is refused."""
    with pytest.raises(ConfigurationError, match="visibility timeout"):
        Settings(max_countdown_s=2000).check_broker_bounds()
