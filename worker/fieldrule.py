"""Field rules: how one job field is filled from a record.

A rule has one source: a dotted path into the record
(:class:`PathSource`), a constant (:class:`ConstantSource`) or a template
(:class:`TemplateSource`). The value it gives then passes, in this order,
through a lookup table, a date format and a ``type`` conversion.

Rules are built, and checked whole, when a mapping file loads
(:mod:`worker.mappingfile`); applying one can only fail because of the
record, with a :class:`~worker.conversion.ValueProblem`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from worker.conversion import (
    ABSENT,
    ValueProblem,
    as_text,
    describe,
    quote,
    read_date,
    resolve,
)

#: Table entries listed when a value is not in the table.
_KNOWN_SHOWN = 8


@dataclass(frozen=True)
class Placeholder:
    """A template's ``{path}`` or ``{path|default}``."""

    path: str
    default: str | None


@dataclass(frozen=True)
class PathSource:
    """Takes the value at a dotted path of the record."""

    path: str

    def read(self, record: dict[str, Any]) -> Any:
        return resolve(record, self.path)


@dataclass(frozen=True)
class ConstantSource:
    """Gives the same value for every record."""

    value: Any

    def read(self, record: dict[str, Any]) -> Any:
        return self.value


@dataclass(frozen=True)
class TemplateSource:
    """Fills placeholders with the record's values."""

    parts: tuple[str | Placeholder, ...]

    def read(self, record: dict[str, Any]) -> str:
        pieces: list[str] = []
        gaps: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            try:
                pieces.append(self._fill(part, record))
            except ValueProblem as exc:
                gaps += exc.messages
        if gaps:
            raise ValueProblem(*gaps)

        return "".join(pieces)

    @staticmethod
    def _fill(part: Placeholder, record: dict[str, Any]) -> str:
        value = resolve(record, part.path)
        if value is ABSENT and part.default is None:
            raise ValueProblem(f"template needs {part.path!r}, which the record lacks")
        if value is ABSENT:
            return part.default or ""

        text = as_text(value)
        if text is None:
            message = f"template needs {part.path!r} to be text or a number"
            raise ValueProblem(f"{message}, got {describe(value)}")
        return text


Source = PathSource | ConstantSource | TemplateSource


@dataclass(frozen=True)
class LookupTable:
    """A lookup table: source value (as text) to job value."""

    name: str
    entries: Mapping[str, Any]

    def known(self) -> str:
        keys = [repr(key) for key in list(self.entries)[:_KNOWN_SHOWN]]
        more = len(self.entries) - len(keys)
        listed = ", ".join(keys) + (f" and {more} more" if more > 0 else "")
        return f"it holds {listed}" if keys else "it is empty"


@dataclass(frozen=True)
class FieldRule:
    """How one job field is filled from a record."""

    target: str
    source: Source
    default: Any = ABSENT
    only_if: str | None = None
    table: LookupTable | None = None
    missing: str = "error"
    date_format: str | None = None
    convert: Callable[[Any], Any] | None = None

    def value(self, record: dict[str, Any]) -> Any:
        """Return the job value for ``record``, or ABSENT to leave it out.

        Raises:
            ValueProblem: the record's value cannot become a job value.
        """
        if self.only_if is not None and resolve(record, self.only_if) is ABSENT:
            return ABSENT
        value = self.source.read(record)
        if value is ABSENT:
            return self.default

        value = self._transform(value)
        is_blank = isinstance(value, str) and not value.strip()
        return ABSENT if is_blank else value

    def _transform(self, value: Any) -> Any:
        if self.table is not None:
            value = self._look_up(self.table, value)
            if value is ABSENT:
                return ABSENT
        if self.date_format is not None:
            value = read_date(value, self.date_format)
        if self.convert is not None:
            value = self.convert(value)
        return value

    def _look_up(self, table: LookupTable, value: Any) -> Any:
        key = as_text(value)
        if key is None:
            noun = describe(value)
            raise ValueProblem(
                f"cannot be looked up in table {table.name!r}: got {noun}"
            )
        if key in table.entries:
            return table.entries[key]
        if self.missing == "omit":
            return ABSENT
        if self.missing == "keep":
            return value

        raise ValueProblem(
            f"{quote(key)} is not in table {table.name!r} ({table.known()})"
        )
