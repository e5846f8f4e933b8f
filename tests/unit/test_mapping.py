"""Handoff mappings: how records become jobs, and how bad files and records
are refused."""

from __future__ import annotations

import io
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.csvrows import read_csv_rows
from worker.errors import ConfigurationError, JobInvalid
from worker.job import parse_job
from worker.mapping import JobMapping, MappingInvalid, load_mappings, map_records
from worker.producer import Producer, Refusal

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = ROOT / "worker" / "data"
EXAMPLES = ROOT / "examples"


def mapping(tmp_path: Path, toml: str, name: str = "leads") -> JobMapping:
    """Write ``toml`` as a mapping file and load it."""
    path = tmp_path / f"{name}.toml"
    path.write_text(toml, encoding="utf-8")
    return JobMapping.load(path)


def field(tmp_path: Path, spec: str, tables: str = "") -> JobMapping:
    """Load a mapping that fills ``name`` as ``spec`` says."""
    return mapping(tmp_path, f"{tables}\n[fields]\nname = {spec}\n")


def problems(job_mapping: JobMapping, record: Any) -> list[tuple[str, str]]:
    """Return the ``(field, message)`` pairs ``apply`` refuses a record with."""
    with pytest.raises(JobInvalid) as caught:
        job_mapping.apply(record)
    return caught.value.problems


def load_error(tmp_path: Path, toml: str) -> str:
    """Return the message a mapping file is refused with when loaded."""
    with pytest.raises(MappingInvalid) as caught:
        mapping(tmp_path, toml)
    return str(caught.value)


STAGES = """
[tables.stage]
closedwon = "Won"
3 = "Engaging"
junk = ""
"""


# Sources ------------------------------------------------------------------


def test_plain_string_takes_the_value_at_that_column(tmp_path: Path) -> None:
    """A plain string is short for ``{ from = ... }``."""
    assert field(tmp_path, '"title"').apply({"title": "Deal"}) == {"name": "Deal"}


def test_dotted_path_reaches_into_nested_objects(tmp_path: Path) -> None:
    """``lead.company`` reads ``company`` inside the ``lead`` object."""
    job = field(tmp_path, '{ from = "lead.company" }').apply(
        {"lead": {"company": "Acme"}}
    )

    assert job == {"name": "Acme"}


def test_key_containing_dots_wins_over_nesting(tmp_path: Path) -> None:
    """A CSV column literally named ``lead.company`` is read as such."""
    record = {"lead.company": "Flat", "lead": {"company": "Nested"}}

    assert field(tmp_path, '"lead.company"').apply(record) == {"name": "Flat"}


def test_path_through_a_non_object_is_absent(tmp_path: Path) -> None:
    """A path that runs into text or an array finds nothing."""
    job_mapping = field(tmp_path, '"lead.company"')

    assert job_mapping.apply({"lead": "Acme"}) == {}
    assert job_mapping.apply({"lead": [{"company": "Acme"}]}) == {}


def test_strings_are_stripped(tmp_path: Path) -> None:
    """Surrounding white space never reaches the job."""
    assert field(tmp_path, '"title"').apply({"title": "  Deal \n"}) == {"name": "Deal"}


@pytest.mark.parametrize("record", [{}, {"title": None}, {"title": "  "}])
def test_absent_null_and_blank_values_leave_the_field_out(
    tmp_path: Path, record: dict[str, Any]
) -> None:
    """A missing, null or blank source is absent: the field is not set."""
    assert field(tmp_path, '"title"').apply(record) == {}


def test_values_that_are_not_text_pass_through_unchanged(tmp_path: Path) -> None:
    """Without a ``type`` a number or an object is handed to the job as is."""
    job = mapping(tmp_path, '[fields]\nprobability = "p"\nfields = "custom"\n').apply(
        {"p": 40, "custom": [{"definition": "Source", "value": "web"}]}
    )

    assert job == {
        "probability": 40,
        "fields": [{"definition": "Source", "value": "web"}],
    }


def test_default_replaces_an_absent_value(tmp_path: Path) -> None:
    """``default`` is the job value when the source is absent."""
    job_mapping = field(tmp_path, '{ from = "title", default = "Untitled" }')

    assert job_mapping.apply({"title": ""}) == {"name": "Untitled"}
    assert job_mapping.apply({"title": "Deal"}) == {"name": "Deal"}


def test_default_is_converted_by_the_type_when_loaded(tmp_path: Path) -> None:
    """A default written as text still becomes the field's type."""
    toml = '[fields]\nprobability = { from = "p", default = "50", type = "integer" }\n'

    assert mapping(tmp_path, toml).apply({}) == {"probability": 50}


def test_const_gives_the_same_value_for_every_record(tmp_path: Path) -> None:
    """``const`` ignores the record."""
    job_mapping = mapping(
        tmp_path, '[fields]\n"milestone.pipeline" = { const = "Sales" }'
    )

    assert job_mapping.apply({}) == {"milestone": {"pipeline": "Sales"}}


def test_const_date_becomes_iso_text(tmp_path: Path) -> None:
    """A TOML date constant is written ``YYYY-MM-DD``."""
    job_mapping = mapping(
        tmp_path, "[fields]\nexpectedCloseOn = { const = 2026-05-01 }"
    )

    assert job_mapping.apply({}) == {"expectedCloseOn": "2026-05-01"}


# Templates ----------------------------------------------------------------


def test_template_fills_placeholders_with_record_values(tmp_path: Path) -> None:
    """Each ``{path}`` is replaced by the record's value, numbers as text."""
    job_mapping = field(tmp_path, '{ template = "{product} x{lead.count}" }')

    assert job_mapping.apply({"product": "GTX", "lead": {"count": 3}}) == {
        "name": "GTX x3"
    }


def test_template_default_fills_an_absent_placeholder(tmp_path: Path) -> None:
    """``{path|default}`` writes the default when the path is absent."""
    job_mapping = field(tmp_path, '{ template = "For {account|unknown account}" }')

    assert job_mapping.apply({"account": " "}) == {"name": "For unknown account"}


def test_doubled_braces_are_literal_braces(tmp_path: Path) -> None:
    """``{{`` and ``}}`` write one brace each."""
    job_mapping = field(tmp_path, '{ template = "{{{id}}}" }')

    assert job_mapping.apply({"id": "7"}) == {"name": "{7}"}


def test_template_cannot_reach_object_attributes(tmp_path: Path) -> None:
    """A placeholder is a record path, never Python attribute access."""
    job_mapping = field(tmp_path, '{ template = "{id.__class__}" }')

    assert problems(job_mapping, {"id": "7"}) == [
        ("name", "template needs 'id.__class__', which the record lacks")
    ]


def test_template_gaps_are_problems_one_per_path(tmp_path: Path) -> None:
    """Each placeholder the record lacks is reported on the target field."""
    job_mapping = field(tmp_path, '{ template = "{product} for {account}" }')

    assert problems(job_mapping, {}) == [
        ("name", "template needs 'product', which the record lacks"),
        ("name", "template needs 'account', which the record lacks"),
    ]


def test_template_refuses_an_object_in_a_placeholder(tmp_path: Path) -> None:
    """An object cannot be written into text."""
    job_mapping = field(tmp_path, '{ template = "{lead}" }')

    assert problems(job_mapping, {"lead": {"id": 1}}) == [
        ("name", "template needs 'lead' to be text or a number, got an object")
    ]


def test_blank_template_result_leaves_the_field_out(tmp_path: Path) -> None:
    """A template that writes only blanks sets nothing."""
    assert field(tmp_path, '{ template = "{a|} {b|}" }').apply({}) == {}


# Lookups ------------------------------------------------------------------


def test_lookup_maps_a_source_value_to_a_job_value(tmp_path: Path) -> None:
    """The record's value is replaced by the table's entry for it."""
    job_mapping = field(tmp_path, '{ from = "stage", lookup = "stage" }', STAGES)

    assert job_mapping.apply({"stage": "closedwon"}) == {"name": "Won"}


def test_lookup_matches_a_number_by_its_text(tmp_path: Path) -> None:
    """JSON numbers find the table entry written as text."""
    job_mapping = field(tmp_path, '{ from = "stage", lookup = "stage" }', STAGES)

    assert job_mapping.apply({"stage": 3}) == {"name": "Engaging"}


def test_value_not_in_table_is_a_problem_naming_the_table(tmp_path: Path) -> None:
    """By default (``missing = "error"``) an unknown value is refused."""
    job_mapping = field(tmp_path, '{ from = "stage", lookup = "stage" }', STAGES)

    assert problems(job_mapping, {"stage": "lost"}) == [
        ("name", "'lost' is not in table 'stage' (it holds 'closedwon', '3', 'junk')")
    ]


def test_missing_omit_leaves_the_field_out(tmp_path: Path) -> None:
    """``missing = "omit"`` drops the field for an unknown value."""
    spec = '{ from = "stage", lookup = "stage", missing = "omit" }'

    assert field(tmp_path, spec, STAGES).apply({"stage": "lost"}) == {}


def test_missing_keep_keeps_the_source_value(tmp_path: Path) -> None:
    """``missing = "keep"`` passes an unknown value through."""
    spec = '{ from = "stage", lookup = "stage", missing = "keep" }'

    assert field(tmp_path, spec, STAGES).apply({"stage": "lost"}) == {"name": "lost"}


def test_blank_table_entry_leaves_the_field_out(tmp_path: Path) -> None:
    """A table entry of ``""`` says: set nothing for this value."""
    job_mapping = field(tmp_path, '{ from = "stage", lookup = "stage" }', STAGES)

    assert job_mapping.apply({"stage": "junk"}) == {}


def test_lookup_of_an_object_is_a_problem(tmp_path: Path) -> None:
    """Only text, numbers and booleans can be looked up."""
    job_mapping = field(tmp_path, '{ from = "stage", lookup = "stage" }', STAGES)

    assert problems(job_mapping, {"stage": ["closedwon"]}) == [
        ("name", "cannot be looked up in table 'stage': got an array")
    ]


def test_csv_table_reads_its_key_and_value_columns(tmp_path: Path) -> None:
    """A table with ``csv`` is read from that file, next to the mapping."""
    (tmp_path / "teams.csv").write_text("agent,office\n Ann ,East\nBo,West\n")
    tables = '[tables.office]\ncsv = "teams.csv"\nkey = "agent"\nvalue = "office"\n'
    job_mapping = field(tmp_path, '{ from = "who", lookup = "office" }', tables)

    assert job_mapping.apply({"who": "Ann"}) == {"name": "East"}


# Dates, types and conditions -------------------------------------------------


def test_date_is_read_in_its_format_and_written_iso(tmp_path: Path) -> None:
    """``date`` is a strptime format; the job gets ``YYYY-MM-DD``."""
    toml = '[fields]\nexpectedCloseOn = { from = "when", date = "%m/%d/%Y" }\n'

    job = mapping(tmp_path, toml).apply({"when": "04/12/2026"})

    assert job == {"expectedCloseOn": "2026-04-12"}


def test_date_with_a_time_keeps_only_the_day(tmp_path: Path) -> None:
    """A timestamp format may read a time of day, which is dropped."""
    toml = '[fields]\nexpectedCloseOn = { from = "at", date = "%Y-%m-%dT%H:%M:%S" }'

    job = mapping(tmp_path, toml).apply({"at": "2026-04-12T17:05:00"})

    assert job == {"expectedCloseOn": "2026-04-12"}


@pytest.mark.parametrize("when", ["2026-04-12", "02/30/2026", 20260412, {"m": 4}])
def test_date_not_in_its_format_is_a_problem(tmp_path: Path, when: Any) -> None:
    """A value the format cannot read is refused on the target field."""
    toml = '[fields]\nexpectedCloseOn = { from = "when", date = "%m/%d/%Y" }\n'

    [(target, message)] = problems(mapping(tmp_path, toml), {"when": when})

    assert target == "expectedCloseOn"
    assert "'%m/%d/%Y'" in message


@pytest.mark.parametrize(
    ("kind", "given", "expected"),
    [
        ("string", 42, "42"),
        ("string", True, "true"),
        ("string", Decimal("1.50"), "1.50"),
        ("integer", "40", 40),
        ("integer", " 40 ", 40),
        ("integer", "40.0", 40),
        ("integer", Decimal("7"), 7),
        ("integer", 7.0, 7),
        ("decimal", "1200.50", "1200.50"),
        ("decimal", 8400, "8400"),
        ("decimal", Decimal("1E+3"), "1000"),
        ("decimal", 0.1, "0.1"),
        ("boolean", "Yes", True),
        ("boolean", "0", False),
        ("boolean", 1, True),
        ("boolean", False, False),
    ],
)
def test_type_converts_the_value(
    tmp_path: Path, kind: str, given: Any, expected: Any
) -> None:
    """``type`` turns the value into text, a whole number, exact decimal
    text or a boolean."""
    job_mapping = field(tmp_path, f'{{ from = "v", type = "{kind}" }}')

    value = job_mapping.apply({"v": given})["name"]

    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("kind", "given"),
    [
        ("string", {"a": 1}),
        ("integer", "forty"),
        ("integer", "40.5"),
        ("integer", True),
        ("integer", "1e3"),
        pytest.param("integer", 10**5000, id="integer-huge"),
        ("decimal", "1,200.50"),
        ("decimal", "NaN"),
        ("decimal", Decimal("Infinity")),
        ("decimal", Decimal("sNaN")),
        ("decimal", float("inf")),
        ("decimal", Decimal("1E+999999999")),
        ("decimal", "9" * 5000),
        ("boolean", "maybe"),
        ("boolean", 2),
        ("boolean", [True]),
    ],
)
def test_value_the_type_cannot_take_is_a_problem(
    tmp_path: Path, kind: str, given: Any
) -> None:
    """A value that cannot be converted is refused on the target field."""
    job_mapping = field(tmp_path, f'{{ from = "v", type = "{kind}" }}')

    [(target, _message)] = problems(job_mapping, {"v": given})

    assert target == "name"


def test_only_if_leaves_the_field_out_when_its_path_is_absent(tmp_path: Path) -> None:
    """``only_if`` sets the field only when another path is present."""
    toml = '[fields]\n"value.currency" = { const = "USD", only_if = "amount" }\n'
    job_mapping = mapping(tmp_path, toml)

    assert job_mapping.apply({"amount": ""}) == {}
    assert job_mapping.apply({"amount": "5"}) == {"value": {"currency": "USD"}}


def test_object_whose_fields_are_all_left_out_is_left_out(tmp_path: Path) -> None:
    """No empty ``party`` object appears when its name is absent."""
    toml = '[fields]\nname = "n"\n"party.name" = "account"\n'

    assert mapping(tmp_path, toml).apply({"n": "Deal"}) == {"name": "Deal"}


def test_unquoted_dotted_keys_fill_nested_fields(tmp_path: Path) -> None:
    """``value.amount = ...`` works as well as ``"value.amount" = ...``."""
    toml = '[fields]\nvalue.amount = "a"\nvalue.currency = { const = "EUR" }\n'

    job = mapping(tmp_path, toml).apply({"a": "5"})

    assert job == {"value": {"amount": "5", "currency": "EUR"}}


# Records apply refuses ------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "kind"),
    [([1], "an array"), ("x", "text"), (3, "a number"), (None, "null")],
)
def test_record_that_is_not_an_object_is_refused(
    tmp_path: Path, record: Any, kind: str
) -> None:
    """Only JSON objects (and CSV rows) can be mapped."""
    assert problems(field(tmp_path, '"title"'), record) == [
        ("(record)", f"must be a JSON object, got {kind}")
    ]


def test_every_problem_of_a_record_is_reported_at_once(tmp_path: Path) -> None:
    """Problems in several fields are reported together, each on its field."""
    toml = STAGES + (
        '[fields]\nname = { template = "{title}" }\n'
        '"milestone.name" = { from = "stage", lookup = "stage" }\n'
        'probability = { from = "p", type = "integer" }\n'
    )

    fields = [f for f, _ in problems(mapping(tmp_path, toml), {"stage": "x", "p": "?"})]

    assert fields == ["name", "milestone.name", "probability"]


def test_missing_required_field_is_left_to_job_validation(tmp_path: Path) -> None:
    """A job without a party is returned; ``parse_job`` then refuses it."""
    toml = (
        '[fields]\nname = "n"\n"party.name" = "account"\n'
        '"milestone.pipeline" = { const = "Sales" }\n"milestone.name" = "s"\n'
    )
    job = mapping(tmp_path, toml).apply({"n": "Deal", "s": "Won"})

    with pytest.raises(JobInvalid) as caught:
        parse_job(job)

    assert [f for f, _ in caught.value.problems] == ["party"]


PROPERTY_MAPPING = (
    STAGES
    + """
[fields]
idempotencyKey = { template = "k-{id}-{{{lead.id|none}}}" }
name = { template = "{title|x} {n}", lookup = "stage", missing = "keep" }
"party.name" = { from = "lead.company", type = "string" }
"milestone.pipeline" = { const = "Sales", only_if = "stage" }
"milestone.name" = { from = "stage", lookup = "stage" }
"owner.name" = { from = "stage", lookup = "stage", missing = "omit" }
"value.amount" = { from = "amount", type = "decimal" }
"value.currency" = { from = "cur", default = "USD", only_if = "amount" }
expectedCloseOn = { from = "when", date = "%m/%d/%Y" }
probability = { from = "n", type = "integer" }
description = { from = "flag", type = "boolean" }
fields = "lead"
"""
)

KEYS = st.sampled_from(
    ["id", "title", "n", "stage", "amount", "cur", "when", "flag", "lead", "company"]
)
TRICKY = st.sampled_from(
    [
        "closedwon",
        "3",
        "9" * 5000,
        "1e999999999",
        "sNaN",
        "\u0663\u0664",
        "\udce9",
        "12/31/9999",
        "02/30/2026",
        "x" * 100_000,
        "{id}",
        Decimal("1E+999999999"),
        Decimal("sNaN"),
        float("nan"),
    ]
)
#: Integers too long for str() (Python's 4300-digit limit), built lazily
#: because hypothesis cannot print them in a strategy's repr.
HUGE_INTEGERS = st.sampled_from([4400, -5000]).map(
    lambda n: (n // abs(n)) * 10 ** abs(n)
)
TEXT = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.decimals()
    | TEXT
    | TRICKY
    | HUGE_INTEGERS
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(KEYS | TEXT, inner, max_size=4)
    ),
    max_leaves=12,
)
RECORDS = st.dictionaries(KEYS, JSON, max_size=9) | JSON


@pytest.fixture(scope="module")
def property_mapping(tmp_path_factory: pytest.TempPathFactory) -> JobMapping:
    """A mapping that uses every source, option and transform."""
    return mapping(tmp_path_factory.mktemp("property"), PROPERTY_MAPPING)


@settings(max_examples=400, deadline=None)
@given(record=RECORDS)
def test_apply_returns_a_dict_or_raises_job_invalid(
    property_mapping: JobMapping, record: Any
) -> None:
    """Whatever the record, apply returns a job dict or raises JobInvalid."""
    try:
        job = property_mapping.apply(record)
    except JobInvalid as exc:
        assert exc.problems
        assert all(isinstance(f, str) and isinstance(m, str) for f, m in exc.problems)
    else:
        assert isinstance(job, dict)


# Loading --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[fields\nname = 'x'", "the file is not valid TOML"),
        ("color = 1\n[fields]\nname = 'x'", "key 'color' is not known"),
        ("description = 3\n[fields]\nname = 'x'", "key 'description' must be text"),
        ("description = 'no fields'", "[fields] must be a table naming at least"),
        ("[fields]\ntitle = 'x'", "field 'title' is not a job field"),
        ("[fields]\n'party.nam' = 'x'", "field 'party.nam' is not a job field"),
        ("[fields]\nparty = 'x'", "field 'party' is an object; map its fields"),
        ("[fields]\nname = 3", "field 'name' must be a path or a table"),
        ("[fields]\nname = ''", "field 'name' needs 'from' as non-blank text"),
        ("[fields]\nname = {}", "field 'name' needs one of from, const and temp"),
        (
            "[fields]\nname = { from = 'a', const = 'b' }",
            "field 'name' needs one of from, const and template (given: from and",
        ),
        (
            "[fields]\nname = { from = 'a', lokup = 'b' }",
            "field 'name' has the unknown option 'lokup'",
        ),
        (
            "[fields]\nname = { const = 'a', type = 'string' }",
            "field 'name' has the unknown option 'type' (const takes only_if)",
        ),
        (
            "[fields]\nname = { template = 'x', default = 'y' }",
            "field 'name' has the unknown option 'default'",
        ),
        (
            "[fields]\nname = { from = 'a', lookup = 'stages' }",
            "field 'name' looks up table 'stages', which [tables] does not define",
        ),
        (
            "[tables.s]\na = 'b'\n[fields]\nname = { from = 'a', lookup = 's', "
            "missing = 'skip' }",
            "field 'name' has missing = 'skip'; use error, omit or keep",
        ),
        (
            "[fields]\nname = { from = 'a', missing = 'omit' }",
            "field 'name' sets 'missing', which only applies with 'lookup'",
        ),
        (
            "[fields]\nname = { from = 'a', type = 'int' }",
            "field 'name' has type 'int'; use string, integer, decimal or boolean",
        ),
        (
            "[fields]\nname = { from = 'a', type = ['int'] }",
            "field 'name' has type ['int']; use string, integer, decimal or boolean",
        ),
        (
            "[fields]\nname = { from = 'a', type = 'integer', default = 'x' }",
            "field 'name' has a default that breaks its type",
        ),
        (
            "[fields]\nname = { from = 'a', default = 1.5 }",
            "field 'name' has 'default' as a float",
        ),
        ("[fields]\nname = { const = [1] }", "field 'name' needs 'const' as text"),
        (
            "[fields]\nname = { from = 'a', only_if = '' }",
            "field 'name' needs 'only_if' as a non-blank path",
        ),
        (
            "[fields]\nname = { from = 'a', date = '%H:%M' }",
            "field 'name' has date = '%H:%M', which cannot read back a full date",
        ),
        (
            "[fields]\nname = { from = 'a', date = '%Q' }",
            "field 'name' has date = '%Q', which cannot read back a full date",
        ),
        (
            "[fields]\nname = { from = 'a', date = 5 }",
            "field 'name' needs 'date' as a strptime format",
        ),
        (
            "[fields]\nname = { template = '{a' }",
            "field 'name' has an unmatched '{' in its template",
        ),
        (
            "[fields]\nname = { template = 'a}' }",
            "field 'name' has an unmatched '}' in its template",
        ),
        (
            "[fields]\nname = { template = 'a{|b}' }",
            "field 'name' has a template placeholder without a path",
        ),
        (
            "[fields]\n'value.amount' = 'a'\nvalue.amount = 'b'",
            "field 'value.amount' is mapped twice",
        ),
        ("tables = 3\n[fields]\nname = 'a'", "key 'tables' must be a table"),
        ("[tables]\ns = 3\n[fields]\nname = 'a'", "table 's' must be a table"),
        (
            "[tables.s]\na = { b = 1 }\n[fields]\nname = 'a'",
            "table 's' needs entry 'a' as text, a whole number, a boolean or a date",
        ),
        (
            "[tables.s]\ncsv = 'x.csv'\nkey = 'a'\n[fields]\nname = 'a'",
            "table 's' needs 'value' as text",
        ),
        (
            "[tables.s]\ncsv = 'x.csv'\nkey = 'a'\nvalue = 'b'\nsep = ';'\n"
            "[fields]\nname = 'a'",
            "table 's' has the unknown option 'sep'",
        ),
    ],
)
def test_broken_mapping_is_refused_when_loaded(
    tmp_path: Path, toml: str, expected: str
) -> None:
    """Each kind of mistake is found on load, naming the file and the entry."""
    message = load_error(tmp_path, toml)

    assert message.startswith(f"Mapping {tmp_path / 'leads.toml'}: ")
    assert expected in message
    assert message.endswith(".")


def test_mapping_invalid_is_a_configuration_error(tmp_path: Path) -> None:
    """A broken mapping stops the process like any other bad setting."""
    with pytest.raises(ConfigurationError) as caught:
        mapping(tmp_path, "[fields]\ntitle = 'x'")

    assert isinstance(caught.value, MappingInvalid)
    assert caught.value.entry == "field 'title'"
    assert caught.value.path == tmp_path / "leads.toml"


def test_missing_mapping_file_is_refused(tmp_path: Path) -> None:
    """A path with no file behind it is a MappingInvalid, not an OSError."""
    with pytest.raises(MappingInvalid, match="the file cannot be read"):
        JobMapping.load(tmp_path / "absent.toml")


def test_mapping_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    """A file in another encoding is refused, not misread."""
    path = tmp_path / "latin.toml"
    path.write_bytes(b"description = 'caf\xe9'\n[fields]\nname = 'a'\n")

    with pytest.raises(MappingInvalid, match="is not UTF-8 text"):
        JobMapping.load(path)


def test_csv_table_whose_file_is_missing_is_refused(tmp_path: Path) -> None:
    """A CSV table naming a file that does not exist stops the load."""
    toml = "[tables.t]\ncsv = 'nope.csv'\nkey = 'a'\nvalue = 'b'\n[fields]\nname='a'"

    message = load_error(tmp_path, toml)

    assert "table 't' reads " in message
    assert "nope.csv, which cannot be read" in message


@pytest.mark.parametrize(
    ("name", "complaint"),
    [
        ("../outside.csv", "is not inside"),
        ("/etc/hostname", "is not inside"),
        ("sub", "is not a regular file"),
    ],
)
def test_csv_table_must_be_a_file_beside_the_mapping(
    tmp_path: Path, name: str, complaint: str
) -> None:
    """A lookup table is read only from the mapping's own folder, and only
    from a regular file (no devices, no folders, no path escapes)."""
    folder = tmp_path / "maps"
    (folder / "sub").mkdir(parents=True)
    (tmp_path / "outside.csv").write_text("a,b\nx,y\n")
    toml = f"[tables.t]\ncsv = '{name}'\nkey = 'a'\nvalue = 'b'\n[fields]\nname='a'"

    message = load_error(folder, toml)

    assert f"table 't' names {name!r}, which {complaint}" in message


def test_csv_table_whose_columns_are_missing_is_refused(tmp_path: Path) -> None:
    """Key and value must be columns of the CSV file's header."""
    (tmp_path / "t.csv").write_text("agent,office\nAnn,East\n")
    toml = "[tables.t]\ncsv = 't.csv'\nkey = 'agent'\nvalue = 'region'\n"

    message = load_error(tmp_path, toml + "[fields]\nname = 'a'")

    assert "table 't' reads column 'region', which " in message


def test_csv_table_giving_a_key_two_values_is_refused(tmp_path: Path) -> None:
    """A key listed twice with different values is ambiguous."""
    (tmp_path / "t.csv").write_text("agent,office\nAnn,East\nAnn,West\n")
    toml = "[tables.t]\ncsv = 't.csv'\nkey = 'agent'\nvalue = 'office'\n"

    message = load_error(tmp_path, toml + "[fields]\nname = 'a'")

    assert "reads 'Ann' twice from" in message
    assert "as 'East' and 'West'" in message


def test_csv_table_with_undecodable_row_is_refused(tmp_path: Path) -> None:
    """A lookup table is all good or not loaded: no half-read tables."""
    (tmp_path / "t.csv").write_bytes(b"agent,office\nAnn,East\nB\xf6,West\n")
    toml = "[tables.t]\ncsv = 't.csv'\nkey = 'agent'\nvalue = 'office'\n"

    message = load_error(tmp_path, toml + "[fields]\nname = 'a'")

    assert "whose line 3 was refused: not valid UTF-8" in message


def test_load_mappings_reads_every_toml_file_by_stem(tmp_path: Path) -> None:
    """Each ``*.toml`` in the directory is a mapping named by its stem."""
    mapping(tmp_path, "[fields]\nname = 'a'", name="first")
    mapping(tmp_path, "[fields]\nname = 'b'", name="second")
    (tmp_path / "notes.txt").write_text("not a mapping")

    mappings = load_mappings(tmp_path)

    assert sorted(mappings) == ["first", "second"]
    assert mappings["second"].name == "second"


def test_load_mappings_refuses_a_broken_file(tmp_path: Path) -> None:
    """One broken mapping stops the whole directory from loading."""
    (tmp_path / "bad.toml").write_text("[fields]\ntitle = 'x'")

    with pytest.raises(MappingInvalid, match=r"bad\.toml: field 'title'"):
        load_mappings(tmp_path)


def test_load_mappings_refuses_a_missing_directory(tmp_path: Path) -> None:
    """A configured directory that is not there is a configuration error."""
    with pytest.raises(MappingInvalid, match="the directory does not exist"):
        load_mappings(tmp_path / "absent")


def test_description_is_kept(tmp_path: Path) -> None:
    """The optional description is available to show to operators."""
    job_mapping = mapping(tmp_path, "description = 'Web leads'\n[fields]\nname='a'")

    assert job_mapping.description == "Web leads"
    assert job_mapping.name == "leads"


# Mapping a stream of records ------------------------------------------------


def test_map_records_passes_refusals_through(tmp_path: Path) -> None:
    """A refusal from reading reaches the report unchanged."""
    refusal = Refusal(3, "(csv)", "has 3 cells but the header names 2 columns")

    items = list(map_records(field(tmp_path, '"t"'), [(3, refusal)]))

    assert items == [(3, refusal)]


def test_map_records_refuses_each_problem_at_its_position(tmp_path: Path) -> None:
    """A record the mapping cannot map gives one refusal per problem."""
    job_mapping = field(tmp_path, '{ template = "{a} {b}" }')

    items = list(map_records(job_mapping, [(2, {"a": "x"}), (3, {}), (4, "row")]))

    assert items == [
        (2, Refusal(2, "name", "template needs 'b', which the record lacks")),
        (3, Refusal(3, "name", "template needs 'a', which the record lacks")),
        (3, Refusal(3, "name", "template needs 'b', which the record lacks")),
        (4, Refusal(4, "(record)", "must be a JSON object, got text")),
    ]


def test_map_records_yields_jobs_at_their_position(tmp_path: Path) -> None:
    """Mapped records keep the position they were read at."""
    items = list(map_records(field(tmp_path, '"t"'), [(5, {"t": "Deal"})]))

    assert items == [(5, {"name": "Deal"})]


class _AdmitAll:
    """A ledger stand-in that admits every job as new."""

    def admit(self, job: object) -> str:
        return "new"


class _NoBroker:
    """A Celery stand-in that records the tasks sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_task(self, name: str, args: list[Any], **kwargs: Any) -> None:
        self.sent.append(args[0])


def test_mapped_csv_feeds_the_producer_unchanged(tmp_path: Path) -> None:
    """read_csv_rows then map_records is what Producer.submit_all takes."""
    toml = (
        '[fields]\nidempotencyKey = "id"\nname = "id"\n"party.name" = "who"\n'
        '"milestone.pipeline" = { const = "Sales" }\n"milestone.name" = "stage"\n'
    )
    data = b"id,who,stage\nk1,Acme,Won\nk2,,Won\nk3,B\xe4r,Won\n"
    broker = _NoBroker()
    producer = Producer(_AdmitAll(), broker, "q")  # type: ignore[arg-type]

    report = producer.submit_all(
        map_records(mapping(tmp_path, toml), read_csv_rows(io.BytesIO(data)))
    )

    assert broker.sent == ["k1"]
    assert [(r.position, r.field) for r in report.refusals] == [
        (3, "party"),
        (4, "(encoding)"),
    ]


# The shipped mappings -------------------------------------------------------


def test_crm_sales_mapping_turns_deals_into_jobs_by_name() -> None:
    """Every deal of the bundled export maps; two rows checked field by field."""
    from worker.dataset import sales_pipeline_jobs

    jobs = dict(sales_pipeline_jobs(DATA_DIR))

    assert len(jobs) == 8800
    assert jobs[2] == {
        "idempotencyKey": "1C1I7A6R",
        "name": "GTX Plus Basic for Cancity (1C1I7A6R)",
        "milestone": {"pipeline": "Sales", "name": "Won"},
        "owner": {"name": "Moses Frase"},
        "description": "Product GTX Plus Basic, engaged 2016-10-20",
        "party": {"name": "Cancity"},
        "team": {"name": "Central"},
        "value": {"amount": "1054", "currency": "USD"},
        "expectedCloseOn": "2017-03-01",
    }
    assert jobs[27] == {
        "idempotencyKey": "UP409DSB",
        "name": "MG Advanced for Ganjaflex (UP409DSB)",
        "milestone": {"pipeline": "Sales", "name": "Engaging"},
        "owner": {"name": "Maureen Marcano"},
        "description": "Product MG Advanced, engaged 2016-11-10",
        "party": {"name": "Ganjaflex"},
        "team": {"name": "West"},
    }


def test_crm_sales_rows_without_account_are_refused_for_party() -> None:
    """A deal without an account maps to a job ``parse_job`` refuses."""
    crm_sales = JobMapping.load(DATA_DIR / "crm-sales.toml")
    row = {
        "opportunity_id": "ZZ1",
        "sales_agent": "Nobody Known",
        "product": "MG Special",
        "account": "",
        "deal_stage": "Prospecting",
        "engage_date": "",
        "close_date": "",
        "close_value": "",
    }

    job = crm_sales.apply(row)
    with pytest.raises(JobInvalid) as caught:
        parse_job(job)

    assert "team" not in job
    assert job["name"] == "MG Special for unknown account (ZZ1)"
    assert caught.value.problems == [("party", "is required (or give partyId)")]


def test_crm_sales_example_is_a_relative_symlink() -> None:
    """examples/crm-sales.toml points into the package, git-trackable."""
    link = EXAMPLES / "crm-sales.toml"

    assert os.readlink(link) == "../worker/data/crm-sales.toml"
    assert JobMapping.load(link).name == "crm-sales"


def test_webhook_example_payloads_become_valid_jobs() -> None:
    """Every example webhook payload maps to a job ``parse_job`` accepts."""
    webhook = JobMapping.load(EXAMPLES / "webhook-leads.toml")
    text = (EXAMPLES / "webhook-leads.json").read_text(encoding="utf-8")
    payloads = json.loads(text, parse_float=Decimal)

    jobs = [parse_job(webhook.apply(payload)) for payload in payloads]

    assert len(jobs) == 3
    assert jobs[0].key == "webhook-lead-L-20417"
    assert jobs[0].milestone is not None and jobs[0].milestone.name == "Won"
    assert str(jobs[0].expected_close_on) == "2026-04-30"
    assert jobs[2].value is None and jobs[2].owner is None
