"""Conversion: a record's values read and turned into job values.

A record is a webhook's JSON object or a CSV row. :func:`resolve` reads
the value at a dotted path of it; missing, null and blank values are
:data:`ABSENT`, and strings come back stripped. The rest turns such a
value into a job value: :func:`read_date` reads a date in a strptime
format, and :data:`CONVERSIONS` holds the ``type`` option's string,
integer, decimal and boolean conversions.

A value that cannot be converted raises :class:`ValueProblem`, whose
messages name the value's JSON kind (:func:`describe`) or quote its text
cut short (:func:`quote`), never a whole record.

Warning:
    Text longer than 100 characters is not read as a number or a date,
    and numbers beyond 10**100 (or finer than 10**-100) are refused; both
    are problems of the value, never crashes.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any


class _Absent(enum.Enum):
    ABSENT = enum.auto()


#: Marks a value the record lacks, or a field to leave out of the job.
ABSENT = _Absent.ABSENT

#: Longest text, in characters, read as a number or a date.
_MAX_SCALAR_CHARS = 100
#: Largest power of ten, either way, a decimal value may reach.
_MAX_EXPONENT = 100
#: Characters of a record's value quoted in a problem message.
_QUOTE_CHARS = 40

_DECIMAL_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})


class ValueProblem(Exception):
    """One record's value cannot become a job value (messages per problem)."""

    def __init__(self, *messages: str) -> None:
        super().__init__(*messages)
        self.messages = messages


# Reading records --------------------------------------------------------


def resolve(record: Any, path: str) -> Any:
    """Return the value at a dotted ``path``, stripped, or ABSENT when it is
    missing, null or blank."""
    value = _walk(record, path)
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        return ABSENT
    return value


def _walk(node: Any, path: str) -> Any:
    """Follow ``path`` through nested objects; a key that contains the dots
    itself (a CSV column named ``a.b``) wins over nesting."""
    while isinstance(node, dict):
        if path in node:
            return node[path]
        head, dot, path = path.partition(".")
        if not dot or head not in node:
            return None
        node = node[head]
    return None


def as_text(value: Any) -> str | None:
    """Return a scalar written as text, or None for anything else."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return _integer_text(value)
    if isinstance(value, float | Decimal):
        return str(value)
    return None


def _integer_text(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # over Python's digit limit; Decimal has none
        return str(Decimal(value))


def describe(value: Any) -> str:
    """Name a value's JSON kind for a message, never its content."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"


def quote(text: str) -> str:
    """Quote a record's text for a message, cut to a readable length."""
    if len(text) > _QUOTE_CHARS:
        text = text[:_QUOTE_CHARS] + "..."
    return repr(text)


# Transforms -------------------------------------------------------------


def read_date(value: Any, date_format: str) -> str:
    """Read a date written in ``date_format``; return it as ``YYYY-MM-DD``."""
    text = as_text(value)
    if text is None:
        raise ValueProblem(
            f"must be a date written {date_format!r}, got {describe(value)}"
        )
    if len(text) > _MAX_SCALAR_CHARS:
        raise ValueProblem(f"{quote(text)} is too long to be a date")

    try:
        return datetime.strptime(text, date_format).date().isoformat()
    except ValueError:
        raise ValueProblem(
            f"{quote(text)} is not a date written {date_format!r}"
        ) from None


def _decimal(value: Any, noun: str) -> Decimal:
    """Return a number given as a JSON number or as plain decimal text."""
    text = as_text(value)
    if text is None or isinstance(value, bool):
        raise ValueProblem(f"must be {noun}, got {describe(value)}")
    if isinstance(value, str) and not _is_decimal_text(value):
        raise ValueProblem(f"{quote(text)} is not {noun}")

    number = Decimal(text)
    if not number.is_finite():
        raise ValueProblem(f"{quote(text)} is not {noun}: it must be finite")
    if abs(number.adjusted()) > _MAX_EXPONENT:
        raise ValueProblem(f"{quote(text)} is out of range for {noun}")
    return number


def _is_decimal_text(text: str) -> bool:
    return len(text) <= _MAX_SCALAR_CHARS and _DECIMAL_RE.fullmatch(text) is not None


def _to_string(value: Any) -> str:
    text = as_text(value)
    if text is None:
        raise ValueProblem(f"must be text or a number, got {describe(value)}")
    return text


def _to_integer(value: Any) -> int:
    number = _decimal(value, "a whole number")
    if number != number.to_integral_value():
        raise ValueProblem(f"{quote(as_text(value) or '')} is not a whole number")
    return int(number)


def _to_decimal(value: Any) -> str:
    # Text, not Decimal: exact, and the job dict stays plain JSON data.
    return format(_decimal(value, "a decimal number such as '1200.50'"), "f")


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = as_text(value)
    if text is not None and text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE

    shown = describe(value) if text is None else quote(text)
    raise ValueProblem(f"must be true or false (or yes/no, on/off, 1/0), got {shown}")


#: The ``type`` option's conversions, by name.
CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "string": _to_string,
    "integer": _to_integer,
    "decimal": _to_decimal,
    "boolean": _to_boolean,
}
