"""Handoff mappings: TOML files that say how a foreign record becomes a job.

Upstream systems rarely speak the job schema. A mapping file names, for
each job field, where its value comes from in a record (a webhook's JSON
object or a CSV row) and how it is transformed on the way::

    description = "Deals exported by the sales CRM."

    [tables.stage]                    # inline lookup table
    closedwon = "Won"

    [tables.office]                   # lookup table read from a CSV file,
    csv = "sales_teams.csv"           # relative to the mapping file
    key = "sales_agent"
    value = "regional_office"

    [fields]                          # dotted job field = its source
    idempotencyKey = { template = "crm-{lead.id}" }
    "milestone.pipeline" = { const = "Sales" }
    "milestone.name" = { from = "lead.stage", lookup = "stage" }
    "owner.name" = "sales_agent"      # short for { from = "sales_agent" }
    "team.name" = { from = "sales_agent", lookup = "office", missing = "omit" }
    expectedCloseOn = { from = "close_date", date = "%m/%d/%Y" }

Each field has one source: ``from`` (a dotted path into the record),
``const`` or ``template`` (``{path}`` or ``{path|default}``; ``{{`` and
``}}`` are literal braces). The value then passes, in this order, through
``lookup`` (with ``missing`` = ``error``, ``omit`` or ``keep``), ``date``
(a strptime format read into ``YYYY-MM-DD``) and ``type`` (``string``,
``integer``, ``decimal`` or ``boolean``). ``only_if`` omits the field
unless a path is present; ``default`` is the job value used when a
``from`` path is absent (converted by ``type`` when the file loads).
Missing, null and blank values count as absent, strings are stripped, and
a field whose value is absent or blank is left out of the job (objects
whose fields are all left out, too).

Lookups match the value's text exactly, case included. A CSV table's file
is found beside the mapping file once symlinks are followed; an inline
table cannot hold an entry named ``csv``. Targets may be written quoted
(``"value.amount"``) or as TOML dotted keys (``value.amount``).

Warning:
    Text longer than 100 characters is not read as a number or a date,
    and numbers beyond 10**100 (or finer than 10**-100) are refused; both
    are problems of their field, never crashes.

Errors::

    ConfigurationError
    └── MappingInvalid    the file cannot work; raised by load, never later
    PermanentError
    └── JobInvalid        one record cannot become a job; raised by apply
"""

from __future__ import annotations

import csv
import enum
import io
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, get_args

from pydantic import BaseModel

from worker.errors import ConfigurationError, JobInvalid
from worker.job import Job
from worker.producer import Refusal


class MappingInvalid(ConfigurationError):
    """A mapping file cannot work; found when it loads, never while mapping.

    Attributes:
        path: the mapping file.
        entry: the part at fault, such as ``field 'value.amount'``.
    """

    def __init__(self, path: Path, entry: str, problem: str) -> None:
        super().__init__(f"Mapping {path}: {entry} {problem}.")
        self.path = path
        self.entry = entry


class _Absent(enum.Enum):
    ABSENT = enum.auto()


#: Marks a value the record lacks, or a field to leave out of the job.
_ABSENT = _Absent.ABSENT

#: Options each kind of source takes besides the source itself.
_OPTIONS = {
    "from": frozenset({"default", "lookup", "missing", "date", "only_if", "type"}),
    "template": frozenset({"lookup", "missing", "date", "only_if", "type"}),
    "const": frozenset({"only_if"}),
}
_MISSING = ("error", "omit", "keep")
_TOP_LEVEL = ("description", "tables", "fields")
_CSV_TABLE_KEYS = ("csv", "key", "value")
#: Longest text, in characters, read as a number or a date.
_MAX_SCALAR_CHARS = 100
#: Largest power of ten, either way, a decimal value may reach.
_MAX_EXPONENT = 100
#: Characters of a record's value quoted in a problem message.
_QUOTE_CHARS = 40
#: Table entries listed when a value is not in the table.
_KNOWN_SHOWN = 8

_DECIMAL_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_TEMPLATE_TOKEN_RE = re.compile(r"(\{\{|\}\}|\{[^{}]*\}|[{}])")
#: Bytes that are not UTF-8, as ``surrogateescape`` decoding leaves them.
_ESCAPED_BYTE_RE = re.compile("[\udc80-\udcff]")
_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})
#: A day every usable date format reads back from its own output.
_SAMPLE_DAY = date(2001, 2, 3)


class _Problem(Exception):
    """One record's value cannot become a job value (messages per problem)."""

    def __init__(self, *messages: str) -> None:
        super().__init__(*messages)
        self.messages = messages


class _Unusable(Exception):
    """A part of a mapping file cannot work (becomes MappingInvalid)."""

    def __init__(self, problem: str, entry: str = "the file") -> None:
        super().__init__(problem)
        self.problem = problem
        self.entry = entry


# Reading records --------------------------------------------------------


def _resolve(record: Any, path: str) -> Any:
    """Return the value at a dotted ``path``, stripped, or _ABSENT when it is
    missing, null or blank."""
    value = _walk(record, path)
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        return _ABSENT
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


def _text(value: Any) -> str | None:
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


def _describe(value: Any) -> str:
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


def _quote(text: str) -> str:
    """Quote a record's text for a message, cut to a readable length."""
    if len(text) > _QUOTE_CHARS:
        text = text[:_QUOTE_CHARS] + "..."
    return repr(text)


# Transforms -------------------------------------------------------------


def _read_date(value: Any, date_format: str) -> str:
    """Read a date written in ``date_format``; return it as ``YYYY-MM-DD``."""
    text = _text(value)
    if text is None:
        raise _Problem(
            f"must be a date written {date_format!r}, got {_describe(value)}"
        )
    if len(text) > _MAX_SCALAR_CHARS:
        raise _Problem(f"{_quote(text)} is too long to be a date")

    try:
        return datetime.strptime(text, date_format).date().isoformat()
    except ValueError:
        raise _Problem(
            f"{_quote(text)} is not a date written {date_format!r}"
        ) from None


def _decimal(value: Any, noun: str) -> Decimal:
    """Return a number given as a JSON number or as plain decimal text."""
    text = _text(value)
    if text is None or isinstance(value, bool):
        raise _Problem(f"must be {noun}, got {_describe(value)}")
    if isinstance(value, str) and not _is_decimal_text(value):
        raise _Problem(f"{_quote(text)} is not {noun}")

    number = Decimal(text)
    if not number.is_finite():
        raise _Problem(f"{_quote(text)} is not {noun}: it must be finite")
    if abs(number.adjusted()) > _MAX_EXPONENT:
        raise _Problem(f"{_quote(text)} is out of range for {noun}")
    return number


def _is_decimal_text(text: str) -> bool:
    return len(text) <= _MAX_SCALAR_CHARS and _DECIMAL_RE.fullmatch(text) is not None


def _to_string(value: Any) -> str:
    text = _text(value)
    if text is None:
        raise _Problem(f"must be text or a number, got {_describe(value)}")
    return text


def _to_integer(value: Any) -> int:
    number = _decimal(value, "a whole number")
    if number != number.to_integral_value():
        raise _Problem(f"{_quote(_text(value) or '')} is not a whole number")
    return int(number)


def _to_decimal(value: Any) -> str:
    # Text, not Decimal: exact, and the job dict stays plain JSON data.
    return format(_decimal(value, "a decimal number such as '1200.50'"), "f")


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value)
    if text is not None and text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE

    shown = _describe(value) if text is None else _quote(text)
    raise _Problem(f"must be true or false (or yes/no, on/off, 1/0), got {shown}")


#: The ``type`` option's conversions, by name.
_CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "string": _to_string,
    "integer": _to_integer,
    "decimal": _to_decimal,
    "boolean": _to_boolean,
}


# Sources and rules ------------------------------------------------------


@dataclass(frozen=True)
class _Placeholder:
    path: str
    default: str | None


@dataclass(frozen=True)
class _Path:
    """Takes the value at a dotted path of the record."""

    path: str

    def read(self, record: dict[str, Any]) -> Any:
        return _resolve(record, self.path)


@dataclass(frozen=True)
class _Constant:
    """Gives the same value for every record."""

    value: Any

    def read(self, record: dict[str, Any]) -> Any:
        return self.value


@dataclass(frozen=True)
class _Template:
    """Fills placeholders with the record's values."""

    parts: tuple[str | _Placeholder, ...]

    def read(self, record: dict[str, Any]) -> str:
        pieces: list[str] = []
        gaps: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            try:
                pieces.append(self._fill(part, record))
            except _Problem as exc:
                gaps += exc.messages
        if gaps:
            raise _Problem(*gaps)

        return "".join(pieces)

    @staticmethod
    def _fill(part: _Placeholder, record: dict[str, Any]) -> str:
        value = _resolve(record, part.path)
        if value is _ABSENT and part.default is None:
            raise _Problem(f"template needs {part.path!r}, which the record lacks")
        if value is _ABSENT:
            return part.default or ""

        text = _text(value)
        if text is None:
            message = f"template needs {part.path!r} to be text or a number"
            raise _Problem(f"{message}, got {_describe(value)}")
        return text


_Source = _Path | _Constant | _Template


@dataclass(frozen=True)
class _Table:
    """A lookup table: source value (as text) to job value."""

    name: str
    entries: Mapping[str, Any]

    def known(self) -> str:
        keys = [repr(key) for key in list(self.entries)[:_KNOWN_SHOWN]]
        more = len(self.entries) - len(keys)
        listed = ", ".join(keys) + (f" and {more} more" if more > 0 else "")
        return f"it holds {listed}" if keys else "it is empty"


@dataclass(frozen=True)
class _Rule:
    """How one job field is filled from a record."""

    target: str
    source: _Source
    default: Any = _ABSENT
    only_if: str | None = None
    table: _Table | None = None
    missing: str = "error"
    date_format: str | None = None
    convert: Callable[[Any], Any] | None = None

    def value(self, record: dict[str, Any]) -> Any:
        """Return the job value for ``record``, or _ABSENT to leave it out.

        Raises:
            _Problem: the record's value cannot become a job value.
        """
        if self.only_if is not None and _resolve(record, self.only_if) is _ABSENT:
            return _ABSENT
        value = self.source.read(record)
        if value is _ABSENT:
            return self.default

        value = self._transform(value)
        is_blank = isinstance(value, str) and not value.strip()
        return _ABSENT if is_blank else value

    def _transform(self, value: Any) -> Any:
        if self.table is not None:
            value = self._look_up(self.table, value)
            if value is _ABSENT:
                return _ABSENT
        if self.date_format is not None:
            value = _read_date(value, self.date_format)
        if self.convert is not None:
            value = self.convert(value)
        return value

    def _look_up(self, table: _Table, value: Any) -> Any:
        key = _text(value)
        if key is None:
            noun = _describe(value)
            raise _Problem(f"cannot be looked up in table {table.name!r}: got {noun}")
        if key in table.entries:
            return table.entries[key]
        if self.missing == "omit":
            return _ABSENT
        if self.missing == "keep":
            return value

        raise _Problem(
            f"{_quote(key)} is not in table {table.name!r} ({table.known()})"
        )


# The mapping ------------------------------------------------------------


@dataclass(frozen=True)
class JobMapping:
    """A loaded mapping file: turns one record into one job dict.

    Attributes:
        name: the file's stem, by which producers choose the mapping.
        description: the file's ``description``, or empty.
    """

    name: str
    description: str = ""
    rules: tuple[_Rule, ...] = ()

    @classmethod
    def load(cls, path: Path) -> JobMapping:
        """Read and check a mapping file, and the CSV tables it names.

        Everything is checked here, so that :meth:`apply` can only fail
        because of a record. Reads files; no retries.

        Raises:
            MappingInvalid: the file, or a CSV table it reads, cannot work.
        """
        try:
            document = _read_document(path)
            tables = _load_tables(path.resolve().parent, document.get("tables", {}))
            rules = _load_rules(document.get("fields"), tables)
        except _Unusable as exc:
            raise MappingInvalid(path, exc.entry, exc.problem) from None

        return cls(path.stem, document.get("description", ""), rules)

    def apply(self, record: Any) -> dict[str, Any]:
        """Return the job dict for one record, ready for ``parse_job``.

        Pure and idempotent: no I/O, and the same record always gives the
        same job (nothing to retry). The job is not validated here: a
        missing required field (say ``party``) is left for ``parse_job``
        to report.

        Raises:
            JobInvalid: one ``(job field, message)`` pair per value that
                cannot be mapped, or ``(record)`` for a record that is not
                a JSON object. No other exception, whatever the record.
        """
        if not isinstance(record, dict):
            kind = _describe(record)
            raise JobInvalid([("(record)", f"must be a JSON object, got {kind}")])

        job: dict[str, Any] = {}
        problems: list[tuple[str, str]] = []
        for rule in self.rules:
            try:
                value = rule.value(record)
            except _Problem as exc:
                problems += [(rule.target, message) for message in exc.messages]
                continue
            if value is not _ABSENT:
                _put(job, rule.target, value)
        if problems:
            raise JobInvalid(problems)

        return job


def _put(job: dict[str, Any], target: str, value: Any) -> None:
    """Set a dotted target, creating its object on first use."""
    head, dot, tail = target.partition(".")
    if dot:
        job.setdefault(head, {})[tail] = value
    else:
        job[head] = value


def load_mappings(directory: Path) -> dict[str, JobMapping]:
    """Load every ``*.toml`` mapping in ``directory``, by file stem.

    Reads files only when called; loading again gives equal mappings.

    Raises:
        MappingInvalid: the directory is missing or unreadable, or a file
            in it is broken (the first one, in name order).
    """
    if not directory.is_dir():
        raise MappingInvalid(directory, "the directory", "does not exist")
    try:
        paths = sorted(directory.glob("*.toml"))
    except OSError as exc:
        raise MappingInvalid(directory, "the directory", _unreadable(exc)) from None

    return {path.stem: JobMapping.load(path) for path in paths}


def map_records(
    mapping: JobMapping, items: Iterable[tuple[int, Any]]
) -> Iterator[tuple[int, Any]]:
    """Turn ``(position, record or Refusal)`` into ``(position, job or
    Refusal)``, ready for ``Producer.submit_all``.

    Refusals pass through; a record the mapping cannot turn into a job
    yields one :class:`Refusal` per problem, at the record's position.
    Lazy and pure: nothing is read beyond the item being mapped.
    """
    for position, item in items:
        if isinstance(item, Refusal):
            yield position, item
            continue
        try:
            job = mapping.apply(item)
        except JobInvalid as exc:
            for field, message in exc.problems:
                yield position, Refusal(position, field, message)
            continue
        yield position, job


# Loading ----------------------------------------------------------------


@contextmanager
def _naming(entry: str) -> Iterator[None]:
    """Attribute the mapping problems found inside to ``entry``."""
    try:
        yield
    except _Unusable as exc:
        raise _Unusable(exc.problem, entry) from None


def _read_document(path: Path) -> dict[str, Any]:
    """Parse the file and check its top-level keys."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _Unusable(_unreadable(exc)) from None
    except UnicodeDecodeError:
        raise _Unusable("is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise _Unusable(f"is not valid TOML ({exc})") from None

    for key in document:
        if key not in _TOP_LEVEL:
            known = "description, tables and fields"
            raise _Unusable(f"is not known (a mapping has {known})", f"key {key!r}")
    if not isinstance(document.get("description", ""), str):
        raise _Unusable("must be text", "key 'description'")
    return document


def _unreadable(exc: OSError) -> str:
    return f"cannot be read ({exc.strerror or exc})"


def _load_tables(base: Path, tables: Any) -> dict[str, _Table]:
    if not isinstance(tables, dict):
        raise _Unusable("must be a table of lookup tables", "key 'tables'")

    loaded = {}
    for name, spec in tables.items():
        with _naming(f"table {name!r}"):
            loaded[name] = _Table(name, _load_table(base, name, spec))
    return loaded


def _load_table(base: Path, name: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise _Unusable(f"must be a table written [tables.{name}]")
    if "csv" in spec:
        return _load_csv_table(base, spec)
    return {key: _job_value(f"entry {key!r}", value) for key, value in spec.items()}


def _job_value(what: str, value: Any) -> Any:
    """Check a value written in the mapping file that goes into jobs."""
    if isinstance(value, float):
        raise _Unusable(f'has {what} as a float; write "1200.50" to keep it exact')
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if not isinstance(value, str | int):
        raise _Unusable(f"needs {what} as text, a whole number, a boolean or a date")
    return value


def _load_csv_table(base: Path, spec: dict[str, Any]) -> dict[str, str]:
    for option in spec:
        if option not in _CSV_TABLE_KEYS:
            raise _Unusable(
                f"has the unknown option {option!r} (a CSV table "
                "takes csv, key and value)"
            )
    for option in _CSV_TABLE_KEYS:
        if not isinstance(spec.get(option), str) or not spec[option]:
            raise _Unusable(f"needs {option!r} as text")

    path = base / spec["csv"]
    try:
        reader = _CsvReader(path.read_bytes())
    except OSError as exc:
        raise _Unusable(f"reads {path}, which {_unreadable(exc)}") from None
    _check_columns(path, reader.header, (spec["key"], spec["value"]))

    return _table_entries(path, reader.rows(), spec["key"], spec["value"])


def _check_columns(
    path: Path, header: list[str] | Refusal | None, columns: tuple[str, str]
) -> None:
    if isinstance(header, Refusal):
        message = f"line {header.position} was refused: {header.message}"
        raise _Unusable(f"reads {path}, whose {message}")
    lacking = [column for column in columns if column not in (header or [])]
    if lacking:
        names = " and ".join(repr(column) for column in lacking)
        raise _Unusable(f"reads column {names}, which {path} lacks")


def _table_entries(
    path: Path, rows: Iterator[tuple[int, Any]], key: str, value: str
) -> dict[str, str]:
    entries: dict[str, str] = {}
    for line, row in rows:
        if isinstance(row, Refusal):
            message = f"line {line} was refused: {row.message}"
            raise _Unusable(f"reads {path}, whose {message}")
        source, target = (row.get(key) or "").strip(), (row.get(value) or "").strip()
        if source in entries and entries[source] != target:
            values = f"{entries[source]!r} and {target!r}"
            raise _Unusable(f"reads {source!r} twice from {path}, as {values}")
        if source:
            entries[source] = target
    return entries


def _load_rules(fields: Any, tables: Mapping[str, _Table]) -> tuple[_Rule, ...]:
    if not isinstance(fields, dict) or not fields:
        raise _Unusable("must be a table naming at least one job field", "[fields]")

    rules: dict[str, _Rule] = {}
    for target, spec in _flat_fields(fields):
        with _naming(f"field {target!r}"):
            if target in rules:
                raise _Unusable("is mapped twice")
            rules[target] = _load_rule(target, spec, tables)
    return tuple(rules.values())


def _flat_fields(fields: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Yield ``(dotted target, spec)``; TOML reads an unquoted dotted key
    (``value.amount = ...``) as a nested table, which is undone here."""
    for target, spec in fields.items():
        if target in _OBJECT_FIELDS and isinstance(spec, dict):
            for sub, sub_spec in spec.items():
                yield f"{target}.{sub}", sub_spec
        else:
            yield target, spec


def _load_rule(target: str, spec: Any, tables: Mapping[str, _Table]) -> _Rule:
    _check_target(target)
    if isinstance(spec, str):
        spec = {"from": spec}
    if not isinstance(spec, dict):
        raise _Unusable('must be a path or a table such as { from = "path" }')

    kind = _source_kind(spec)
    for option in spec:
        if option != kind and option not in _OPTIONS[kind]:
            allowed = ", ".join(sorted(_OPTIONS[kind]))
            raise _Unusable(
                f"has the unknown option {option!r} ({kind} takes {allowed})"
            )

    convert = _conversion(spec.get("type"))
    return _Rule(
        target=target,
        source=_load_source(kind, spec[kind]),
        default=_default(spec, convert),
        only_if=_path_option(spec, "only_if"),
        table=_table_option(spec, tables),
        missing=_missing_option(spec),
        date_format=_date_option(spec.get("date")),
        convert=convert,
    )


def _check_target(target: str) -> None:
    if target in _TARGETS:
        return
    if target in _OBJECT_FIELDS:
        example = min(t for t in _TARGETS if t.startswith(f"{target}."))
        raise _Unusable(f"is an object; map its fields instead, such as {example!r}")
    known = ", ".join(sorted(_TARGETS))
    raise _Unusable(f"is not a job field (the job fields are {known})")


def _source_kind(spec: dict[str, Any]) -> str:
    kinds = [kind for kind in _OPTIONS if kind in spec]
    if len(kinds) != 1:
        given = " and ".join(kinds) or "none"
        raise _Unusable(f"needs one of from, const and template (given: {given})")
    return kinds[0]


def _load_source(kind: str, value: Any) -> _Source:
    if kind == "const":
        return _Constant(_job_value("'const'", value))
    if not isinstance(value, str) or not value.strip():
        raise _Unusable(f"needs {kind!r} as non-blank text")
    if kind == "template":
        return _Template(_parse_template(value))
    return _Path(value.strip())


def _parse_template(text: str) -> tuple[str | _Placeholder, ...]:
    """Split a template into literal text and placeholders (our own small
    grammar: ``str.format`` would let a mapping reach object attributes)."""
    parts: list[str | _Placeholder] = []
    for token in _TEMPLATE_TOKEN_RE.split(text):
        if token in ("{{", "}}"):
            parts.append(token[0])
        elif token in ("{", "}"):
            raise _Unusable(
                f"has an unmatched {token!r} in its template "
                f"(write {token * 2!r} for a literal brace)"
            )
        elif token.startswith("{"):
            parts.append(_placeholder(token[1:-1]))
        elif token:
            parts.append(token)
    return tuple(parts)


def _placeholder(inner: str) -> _Placeholder:
    path, bar, default = inner.partition("|")
    if not path.strip():
        raise _Unusable("has a template placeholder without a path")
    return _Placeholder(path.strip(), default if bar else None)


def _conversion(name: Any) -> Callable[[Any], Any] | None:
    if name is None:
        return None
    if not isinstance(name, str) or name not in _CONVERSIONS:
        raise _Unusable(f"has type {name!r}; use string, integer, decimal or boolean")
    return _CONVERSIONS[name]


def _default(spec: dict[str, Any], convert: Callable[[Any], Any] | None) -> Any:
    if "default" not in spec:
        return _ABSENT
    value = _job_value("'default'", spec["default"])
    if convert is None:
        return value
    try:
        return convert(value)
    except _Problem as exc:
        raise _Unusable(
            f"has a default that breaks its type: {exc.messages[0]}"
        ) from None


def _path_option(spec: dict[str, Any], option: str) -> str | None:
    value = spec.get(option)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _Unusable(f"needs {option!r} as a non-blank path")
    return value.strip()


def _table_option(spec: dict[str, Any], tables: Mapping[str, _Table]) -> _Table | None:
    name = spec.get("lookup")
    if name is None:
        return None
    if not isinstance(name, str) or name not in tables:
        raise _Unusable(f"looks up table {name!r}, which [tables] does not define")
    return tables[name]


def _missing_option(spec: dict[str, Any]) -> str:
    missing = spec.get("missing", "error")
    if "missing" in spec and "lookup" not in spec:
        raise _Unusable("sets 'missing', which only applies with 'lookup'")
    if missing not in _MISSING:
        raise _Unusable(f"has missing = {missing!r}; use error, omit or keep")
    return str(missing)


def _date_option(date_format: Any) -> str | None:
    """Check that a strptime format reads back the full date it wrote."""
    if date_format is None:
        return None
    if not isinstance(date_format, str):
        raise _Unusable("needs 'date' as a strptime format such as '%m/%d/%Y'")
    try:
        read_back = datetime.strptime(_SAMPLE_DAY.strftime(date_format), date_format)
    except ValueError:
        read_back = None
    if read_back is None or read_back.date() != _SAMPLE_DAY:
        raise _Unusable(
            f"has date = {date_format!r}, which cannot read back a full date "
            "it writes (a year, a month and a day, as in '%m/%d/%Y')"
        )
    return date_format


def _job_fields() -> tuple[frozenset[str], frozenset[str]]:
    """Return the dotted job fields a mapping may fill, and the job's object
    fields (filled through their own fields)."""
    targets: set[str] = set()
    objects: set[str] = set()
    for field in Job.model_fields.values():
        alias = field.alias or ""
        model = _model_in(field.annotation)
        if model is None:
            targets.add(alias)
            continue
        objects.add(alias)
        targets.update(f"{alias}.{sub.alias}" for sub in model.model_fields.values())
    return frozenset(targets), frozenset(objects)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


_TARGETS, _OBJECT_FIELDS = _job_fields()


# CSV --------------------------------------------------------------------


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
    reader = _CsvReader(stream.read())
    if isinstance(reader.header, Refusal):
        yield reader.header.position, reader.header
        return
    yield from reader.rows()


class _CsvReader:
    """Splits CSV bytes into a header and rows, keeping the physical line
    each starts on."""

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
    if len(cells) > len(header):
        message = f"has {len(cells)} cells but the header names {len(header)} columns"
        return Refusal(line, "(csv)", message)
    return dict(zip(header, cells, strict=False))


def _encoding_problem(line: int, cells: list[str]) -> Refusal | None:
    for cell in cells:
        escaped = _ESCAPED_BYTE_RE.search(cell)
        if escaped:
            byte = ord(escaped.group()) - 0xDC00
            message = f"not valid UTF-8: byte 0x{byte:02X} cannot be decoded"
            return Refusal(line, "(encoding)", message)
    return None
