"""Reading CSV: rows by column name at their physical line, and bad bytes
and rows refused without stopping the file."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.csvrows import read_csv_rows
from worker.producer import Refusal


def csv_items(data: bytes) -> list[tuple[int, Any]]:
    """Return what ``read_csv_rows`` yields for ``data``."""
    return list(read_csv_rows(io.BytesIO(data)))


def test_first_csv_row_is_line_two() -> None:
    """The header is line 1; rows are dicts by column name."""
    assert csv_items(b"a,b\n1,2\n3,4\n") == [
        (2, {"a": "1", "b": "2"}),
        (3, {"a": "3", "b": "4"}),
    ]


def test_csv_byte_order_mark_is_ignored() -> None:
    """A UTF-8 BOM does not become part of the first column's name."""
    assert csv_items(b"\xef\xbb\xbfa,b\n1,2\n") == [(2, {"a": "1", "b": "2"})]


def test_quoted_cell_spanning_lines_moves_later_rows_down() -> None:
    """Line numbers are physical lines, as an editor shows them."""
    items = csv_items(b'a,b\n1,"two\nlines"\n3,4\r\n5,6\r\n')

    assert [line for line, _ in items] == [2, 4, 5]
    assert items[0][1] == {"a": "1", "b": "two\nlines"}


def test_blank_csv_lines_are_skipped_and_numbering_kept() -> None:
    """Empty lines are not rows but still count."""
    assert [n for n, _ in csv_items(b"\na,b\n\n1,2\n\n3,4")] == [4, 6]


def test_csv_header_names_are_stripped() -> None:
    """``a, b`` names the columns ``a`` and ``b``."""
    assert csv_items(b"a, b\n1,2\n") == [(2, {"a": "1", "b": "2"})]


def test_undecodable_bytes_refuse_only_their_row() -> None:
    """A row that is not UTF-8 is refused; the rows around it are kept."""
    items = csv_items(b"a,b\n1,2\nM\xfcller,3\n4,5\n")

    assert items[1] == (
        3,
        Refusal(3, "(encoding)", "not valid UTF-8: byte 0xFC cannot be decoded"),
    )
    assert [n for n, r in items if isinstance(r, dict)] == [2, 4]


def test_undecodable_header_refuses_the_file() -> None:
    """Without readable column names no row can be mapped."""
    items = csv_items(b"a,\xffb\n1,2\n")

    assert items == [
        (1, Refusal(1, "(encoding)", "not valid UTF-8: byte 0xFF cannot be decoded"))
    ]


def test_repeated_header_column_refuses_the_file() -> None:
    """Two columns of one name would hide one of them."""
    assert csv_items(b"a,b,a\n1,2,3\n") == [
        (1, Refusal(1, "(csv)", "the header names column 'a' twice"))
    ]


def test_row_longer_than_the_header_is_refused() -> None:
    """A row with more cells than columns is refused as ``(csv)``."""
    items = csv_items(b"a,b\n1,2,3\n4,5\n")

    assert items == [
        (2, Refusal(2, "(csv)", "has 3 cells but the header names 2 columns")),
        (3, {"a": "4", "b": "5"}),
    ]


def test_row_shorter_than_the_header_is_refused_and_reading_goes_on() -> None:
    """A row missing cells may have shifted its values: it is refused, the
    next row is read."""
    assert csv_items(b"a,b,c\n1\n1,2,3\n") == [
        (2, Refusal(2, "(csv)", "has 1 cells but the header names 3 columns")),
        (3, {"a": "1", "b": "2", "c": "3"}),
    ]


def test_oversized_csv_field_is_refused_and_reading_goes_on() -> None:
    """A field over the csv module's size limit refuses its row only."""
    data = b"a,b\n" + b'"' + b"x" * 200_000 + b"\n1,2\n"

    items = csv_items(data)

    assert items[0][1] == Refusal(
        2, "(csv)", "not valid CSV: field larger than field limit (131072)"
    )
    assert items[-1][1] == {"a": "1", "b": "2"}


@pytest.mark.parametrize("data", [b"", b"\n\n", b"a,b\n"])
def test_csv_without_rows_yields_nothing(data: bytes) -> None:
    """An empty file, or a header alone, has no rows to map."""
    assert csv_items(data) == []


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=300)
    | st.lists(
        st.sampled_from(
            [b"a", b",", b'"', b"\n", b"\r", b"\xff", b"\xc3", b"\x00", b"\xef\xbb\xbf"]
        )
    ).map(b"".join)
)
def test_reading_csv_never_raises(data: bytes) -> None:
    """Any bytes at all give rows and refusals, never an exception."""
    for line, item in csv_items(data):
        assert line >= 1
        assert isinstance(item, dict | Refusal)
