"""CSV rows: a CSV file's bytes read as ``{column: cell}`` records.

The header is the first non-empty row and names the columns; a UTF-8
byte order mark before it is dropped, and its names are stripped. Each
later non-empty row becomes a dict of the cells it has, by column name.

Line numbers are physical lines, as an editor shows them: the header on
line 1 puts the first row on line 2, blank lines are skipped but still
counted, and a quoted cell spanning lines moves the rows after it down.

Nothing here raises for any content. Bad input becomes a
:class:`~worker.producer.Refusal` at its line, and reading goes on:

- a row with bytes that are not UTF-8 is refused as ``(encoding)``;
- a row with more cells than the header has columns, or one the csv
  module cannot read (an oversized field, say), is refused as ``(csv)``;
- a header that is not UTF-8 or names a column twice is refused once,
  and ends the file: without column names no row can be read.

Used by the command line and the bundled data set for records, and by
mapping files for their CSV lookup tables.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any, BinaryIO

from worker.producer import Refusal

#: Bytes that are not UTF-8, as ``surrogateescape`` decoding leaves them.
_ESCAPED_BYTE_RE = re.compile("[\udc80-\udcff]")


def read_csv_rows(stream: BinaryIO) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, row or Refusal)`` for each row of a CSV file.

    The header is the first non-empty row and names the columns; a row is a
    ``{column: cell}`` dict, without the columns it has no cell for. Line
    numbers are physical: the header on line 1 puts the first row on line
    2, and a quoted cell spanning lines moves the rows after it down.
    Never raises for any content: a row with bytes that are not UTF-8
    yields a ``(encoding)`` refusal, a row longer than the header or
    broken CSV a ``(csv)`` refusal, and reading goes on. A broken header
    yields one refusal and ends the file.

    Warning:
        The whole stream is read into memory first.
    """
    reader = CsvReader(stream.read())
    if isinstance(reader.header, Refusal):
        yield reader.header.position, reader.header
        return
    yield from reader.rows()


class CsvReader:
    """Splits CSV bytes into a header and rows, keeping the physical line
    each starts on.

    Attributes:
        header: the column names; a Refusal when the header is broken, or
            None when the file has no non-empty row.
    """

    def __init__(self, data: bytes) -> None:
        text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "surrogateescape")
        self._reader = csv.reader(io.StringIO(text, newline=""))
        self._records = self._read_records()
        self.header = self._read_header()

    def rows(self) -> Iterator[tuple[int, Any]]:
        """Yield ``(line, row or Refusal)``; nothing when the header is bad."""
        if not isinstance(self.header, list):
            return
        for line, cells in self._records:
            if isinstance(cells, Refusal):
                yield line, cells
            else:
                yield line, _row(line, self.header, cells)

    def _read_header(self) -> list[str] | Refusal | None:
        line, cells = next(self._records, (0, None))
        if cells is None or isinstance(cells, Refusal):
            return cells
        problem = _encoding_problem(line, cells)
        if problem is not None:
            return problem

        header = [name.strip() for name in cells]
        twice = [name for name, count in Counter(header).items() if count > 1]
        if twice:
            return Refusal(line, "(csv)", f"the header names column {twice[0]!r} twice")
        return header

    def _read_records(self) -> Iterator[tuple[int, list[str] | Refusal]]:
        """Yield each non-empty record with the line it starts on."""
        while True:
            line = self._reader.line_num + 1
            try:
                cells = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield line, Refusal(line, "(csv)", f"not valid CSV: {exc}")
                continue
            if cells:
                yield line, cells


def _row(line: int, header: list[str], cells: list[str]) -> dict[str, str] | Refusal:
    """Name a row's cells by the header, or refuse the row."""
    problem = _encoding_problem(line, cells)
    if problem is not None:
        return problem
    if len(cells) != len(header):
        # A short row is as suspect as a long one: its cells may have
        # shifted, and a silently missing column would be a lost field.
        message = f"has {len(cells)} cells but the header names {len(header)} columns"
        return Refusal(line, "(csv)", message)
    return dict(zip(header, cells, strict=True))


def _encoding_problem(line: int, cells: list[str]) -> Refusal | None:
    for cell in cells:
        escaped = _ESCAPED_BYTE_RE.search(cell)
        if escaped:
            byte = ord(escaped.group()) - 0xDC00
            message = f"not valid UTF-8: byte 0x{byte:02X} cannot be decoded"
            return Refusal(line, "(encoding)", message)
    return None
