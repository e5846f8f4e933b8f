"""Mapping files read into field rules, and checked whole.

A mapping file is a TOML document with a ``description``, lookup
``tables`` (inline, or read from a CSV file beside the mapping file) and
the ``fields`` that say how each job field is filled; its format is laid
out in :mod:`worker.mapping`, the module to import mappings from.

Everything a file could get wrong is found here, when it loads: unknown
keys and options, fields that are not job fields, unknown tables, bad
templates, date formats that cannot read back a full date, defaults that
break their type. Each becomes an :class:`Unusable` naming the part at
fault, which :meth:`worker.mapping.JobMapping.load` reports as
``MappingInvalid``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from worker.conversion import ABSENT, CONVERSIONS, ValueProblem
from worker.csvrows import CsvReader
from worker.fieldrule import (
    ConstantSource,
    FieldRule,
    LookupTable,
    PathSource,
    Placeholder,
    Source,
    TemplateSource,
)
from worker.job import Job
from worker.producer import Refusal

#: Options each kind of source takes besides the source itself.
_OPTIONS = {
    "from": frozenset({"default", "lookup", "missing", "date", "only_if", "type"}),
    "template": frozenset({"lookup", "missing", "date", "only_if", "type"}),
    "const": frozenset({"only_if"}),
}
_MISSING = ("error", "omit", "keep")
_TOP_LEVEL = ("description", "tables", "fields")
_CSV_TABLE_KEYS = ("csv", "key", "value")
#: Largest CSV lookup table file, in bytes.
MAX_TABLE_BYTES = 50 * 1024 * 1024

_TEMPLATE_TOKEN_RE = re.compile(r"(\{\{|\}\}|\{[^{}]*\}|[{}])")
#: A day every usable date format reads back from its own output.
_SAMPLE_DAY = date(2001, 2, 3)


class Unusable(Exception):
    """A part of a mapping file cannot work (becomes MappingInvalid)."""

    def __init__(self, problem: str, entry: str = "the file") -> None:
        super().__init__(problem)
        self.problem = problem
        self.entry = entry


def read_mapping_file(path: Path) -> tuple[str, tuple[FieldRule, ...]]:
    """Return a mapping file's description and its field rules.

    Reads the file and the CSV tables it names; no retries.

    Raises:
        Unusable: the file, or a CSV table it reads, cannot work.
    """
    document = _read_document(path)
    tables = _load_tables(path.resolve().parent, document.get("tables", {}))
    rules = _load_rules(document.get("fields"), tables)

    return document.get("description", ""), rules


def unreadable(exc: OSError) -> str:
    """Say why a file or directory cannot be read, for a message."""
    return f"cannot be read ({exc.strerror or exc})"


@contextmanager
def _naming(entry: str) -> Iterator[None]:
    """Attribute the mapping problems found inside to ``entry``."""
    try:
        yield
    except Unusable as exc:
        raise Unusable(exc.problem, entry) from None


def _read_document(path: Path) -> dict[str, Any]:
    """Parse the file and check its top-level keys."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise Unusable(unreadable(exc)) from None
    except UnicodeDecodeError:
        raise Unusable("is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise Unusable(f"is not valid TOML ({exc})") from None

    for key in document:
        if key not in _TOP_LEVEL:
            known = "description, tables and fields"
            raise Unusable(f"is not known (a mapping has {known})", f"key {key!r}")
    if not isinstance(document.get("description", ""), str):
        raise Unusable("must be text", "key 'description'")
    return document


def _load_tables(base: Path, tables: Any) -> dict[str, LookupTable]:
    if not isinstance(tables, dict):
        raise Unusable("must be a table of lookup tables", "key 'tables'")

    loaded = {}
    for name, spec in tables.items():
        with _naming(f"table {name!r}"):
            loaded[name] = LookupTable(name, _load_table(base, name, spec))
    return loaded


def _load_table(base: Path, name: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise Unusable(f"must be a table written [tables.{name}]")
    if "csv" in spec:
        return _load_csv_table(base, spec)
    return {key: _job_value(f"entry {key!r}", value) for key, value in spec.items()}


def _job_value(what: str, value: Any) -> Any:
    """Check a value written in the mapping file that goes into jobs."""
    if isinstance(value, float):
        raise Unusable(f'has {what} as a float; write "1200.50" to keep it exact')
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if not isinstance(value, str | int):
        raise Unusable(f"needs {what} as text, a whole number, a boolean or a date")
    return value


def _load_csv_table(base: Path, spec: dict[str, Any]) -> dict[str, str]:
    for option in spec:
        if option not in _CSV_TABLE_KEYS:
            raise Unusable(
                f"has the unknown option {option!r} (a CSV table "
                "takes csv, key and value)"
            )
    for option in _CSV_TABLE_KEYS:
        if not isinstance(spec.get(option), str) or not spec[option]:
            raise Unusable(f"needs {option!r} as text")

    path = _table_path(base, spec["csv"])
    try:
        reader = CsvReader(path.read_bytes())
    except OSError as exc:
        raise Unusable(f"reads {path}, which {unreadable(exc)}") from None
    _check_columns(path, reader.header, (spec["key"], spec["value"]))

    return _table_entries(path, reader.rows(), spec["key"], spec["value"])


def _table_path(base: Path, name: str) -> Path:
    """Return the table file, which must be a regular file of at most
    ``MAX_TABLE_BYTES`` inside the mapping's folder."""
    path = (base / name).resolve()
    if not path.is_relative_to(base.resolve()):
        raise Unusable(f"names {name!r}, which is not inside {base}")
    if path.exists() and not path.is_file():
        raise Unusable(f"names {name!r}, which is not a regular file")
    if path.exists() and path.stat().st_size > MAX_TABLE_BYTES:
        raise Unusable(f"names {name!r}, which is over {MAX_TABLE_BYTES} bytes")
    return path


def _check_columns(
    path: Path, header: list[str] | Refusal | None, columns: tuple[str, str]
) -> None:
    if isinstance(header, Refusal):
        message = f"line {header.position} was refused: {header.message}"
        raise Unusable(f"reads {path}, whose {message}")
    lacking = [column for column in columns if column not in (header or [])]
    if lacking:
        names = " and ".join(repr(column) for column in lacking)
        raise Unusable(f"reads column {names}, which {path} lacks")


def _table_entries(
    path: Path, rows: Iterator[tuple[int, Any]], key: str, value: str
) -> dict[str, str]:
    entries: dict[str, str] = {}
    for line, row in rows:
        if isinstance(row, Refusal):
            message = f"line {line} was refused: {row.message}"
            raise Unusable(f"reads {path}, whose {message}")
        source, target = (row.get(key) or "").strip(), (row.get(value) or "").strip()
        if source in entries and entries[source] != target:
            values = f"{entries[source]!r} and {target!r}"
            raise Unusable(f"reads {source!r} twice from {path}, as {values}")
        if source:
            entries[source] = target
    return entries


def _load_rules(
    fields: Any, tables: Mapping[str, LookupTable]
) -> tuple[FieldRule, ...]:
    if not isinstance(fields, dict) or not fields:
        raise Unusable("must be a table naming at least one job field", "[fields]")

    rules: dict[str, FieldRule] = {}
    for target, spec in _flat_fields(fields):
        with _naming(f"field {target!r}"):
            if target in rules:
                raise Unusable("is mapped twice")
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


def _load_rule(target: str, spec: Any, tables: Mapping[str, LookupTable]) -> FieldRule:
    _check_target(target)
    if isinstance(spec, str):
        spec = {"from": spec}
    if not isinstance(spec, dict):
        raise Unusable('must be a path or a table such as { from = "path" }')

    kind = _source_kind(spec)
    for option in spec:
        if option != kind and option not in _OPTIONS[kind]:
            allowed = ", ".join(sorted(_OPTIONS[kind]))
            raise Unusable(
                f"has the unknown option {option!r} ({kind} takes {allowed})"
            )

    convert = _conversion(spec.get("type"))
    return FieldRule(
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
        raise Unusable(f"is an object; map its fields instead, such as {example!r}")
    known = ", ".join(sorted(_TARGETS))
    raise Unusable(f"is not a job field (the job fields are {known})")


def _source_kind(spec: dict[str, Any]) -> str:
    kinds = [kind for kind in _OPTIONS if kind in spec]
    if len(kinds) != 1:
        given = " and ".join(kinds) or "none"
        raise Unusable(f"needs one of from, const and template (given: {given})")
    return kinds[0]


def _load_source(kind: str, value: Any) -> Source:
    if kind == "const":
        return ConstantSource(_job_value("'const'", value))
    if not isinstance(value, str) or not value.strip():
        raise Unusable(f"needs {kind!r} as non-blank text")
    if kind == "template":
        return TemplateSource(_parse_template(value))
    return PathSource(value.strip())


def _parse_template(text: str) -> tuple[str | Placeholder, ...]:
    """Split a template into literal text and placeholders (our own small
    grammar: ``str.format`` would let a mapping reach object attributes)."""
    parts: list[str | Placeholder] = []
    for token in _TEMPLATE_TOKEN_RE.split(text):
        if token in ("{{", "}}"):
            parts.append(token[0])
        elif token in ("{", "}"):
            raise Unusable(
                f"has an unmatched {token!r} in its template "
                f"(write {token * 2!r} for a literal brace)"
            )
        elif token.startswith("{"):
            parts.append(_placeholder(token[1:-1]))
        elif token:
            parts.append(token)
    return tuple(parts)


def _placeholder(inner: str) -> Placeholder:
    path, bar, default = inner.partition("|")
    if not path.strip():
        raise Unusable("has a template placeholder without a path")
    return Placeholder(path.strip(), default if bar else None)


def _conversion(name: Any) -> Callable[[Any], Any] | None:
    if name is None:
        return None
    if not isinstance(name, str) or name not in CONVERSIONS:
        raise Unusable(f"has type {name!r}; use string, integer, decimal or boolean")
    return CONVERSIONS[name]


def _default(spec: dict[str, Any], convert: Callable[[Any], Any] | None) -> Any:
    if "default" not in spec:
        return ABSENT
    value = _job_value("'default'", spec["default"])
    if convert is None:
        return value
    try:
        return convert(value)
    except ValueProblem as exc:
        raise Unusable(
            f"has a default that breaks its type: {exc.messages[0]}"
        ) from None


def _path_option(spec: dict[str, Any], option: str) -> str | None:
    value = spec.get(option)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise Unusable(f"needs {option!r} as a non-blank path")
    return value.strip()


def _table_option(
    spec: dict[str, Any], tables: Mapping[str, LookupTable]
) -> LookupTable | None:
    name = spec.get("lookup")
    if name is None:
        return None
    if not isinstance(name, str) or name not in tables:
        raise Unusable(f"looks up table {name!r}, which [tables] does not define")
    return tables[name]


def _missing_option(spec: dict[str, Any]) -> str:
    missing = spec.get("missing", "error")
    if "missing" in spec and "lookup" not in spec:
        raise Unusable("sets 'missing', which only applies with 'lookup'")
    if missing not in _MISSING:
        raise Unusable(f"has missing = {missing!r}; use error, omit or keep")
    return str(missing)


def _date_option(date_format: Any) -> str | None:
    """Check that a strptime format reads back the full date it wrote."""
    if date_format is None:
        return None
    if not isinstance(date_format, str):
        raise Unusable("needs 'date' as a strptime format such as '%m/%d/%Y'")
    try:
        read_back = datetime.strptime(_SAMPLE_DAY.strftime(date_format), date_format)
    except ValueError:
        read_back = None
    if read_back is None or read_back.date() != _SAMPLE_DAY:
        raise Unusable(
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
