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

Import mappings from here. Behind this module, :mod:`worker.mappingfile`
reads and checks the file, :mod:`worker.fieldrule` fills one field,
:mod:`worker.conversion` reads and converts a record's values, and
:mod:`worker.csvrows` reads CSV records and tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.conversion import ABSENT, ValueProblem, describe
from worker.errors import ConfigurationError, JobInvalid
from worker.fieldrule import FieldRule
from worker.mappingfile import Unusable, read_mapping_file, unreadable
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


@dataclass(frozen=True)
class JobMapping:
    """A loaded mapping file: turns one record into one job dict.

    Attributes:
        name: the file's stem, by which producers choose the mapping.
        description: the file's ``description``, or empty.
    """

    name: str
    description: str = ""
    rules: tuple[FieldRule, ...] = ()

    @classmethod
    def load(cls, path: Path) -> JobMapping:
        """Read and check a mapping file, and the CSV tables it names.

        Everything is checked here, so that :meth:`apply` can only fail
        because of a record. Reads files; no retries.

        Raises:
            MappingInvalid: the file, or a CSV table it reads, cannot work.
        """
        try:
            description, rules = read_mapping_file(path)
        except Unusable as exc:
            raise MappingInvalid(path, exc.entry, exc.problem) from None

        return cls(path.stem, description, rules)

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
            kind = describe(record)
            raise JobInvalid([("(record)", f"must be a JSON object, got {kind}")])

        job: dict[str, Any] = {}
        problems: list[tuple[str, str]] = []
        for rule in self.rules:
            try:
                value = rule.value(record)
            except ValueProblem as exc:
                problems += [(rule.target, message) for message in exc.messages]
                continue
            if value is not ABSENT:
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
        raise MappingInvalid(directory, "the directory", unreadable(exc)) from None

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
