"""The job schema: what producers send, validated before it is enqueued.

A job carries the fields of Capsule's create-opportunity call, with every
reference given either by Capsule id or by name. :func:`parse_job` is the one
door in; it returns a frozen :class:`Job` or raises :class:`JobInvalid` with
one ``(field, message)`` pair per problem. Amounts stay :class:`Decimal` from
parsing to the wire so that no binary-float tail is ever sent.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from worker.currency import is_iso_4217
from worker.errors import JobInvalid

#: Largest amount accepted, in currency units.
MAX_AMOUNT = Decimal("1e13")

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DECIMAL_RE = re.compile(r"^-?\d+(\.\d+)?$")


#: Control characters no Capsule text field should receive (tab, line
#: feed and carriage return are text).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _non_blank(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be blank")
    if isinstance(value, str) and _CONTROL_RE.search(value):
        raise ValueError("must not contain control characters")
    return value


#: Longest idempotency key, in characters.
MAX_KEY_LENGTH = 200


def _printable_key(value: Any) -> Any:
    if isinstance(value, str) and not value.isprintable():
        raise ValueError("must contain printable characters only")
    if isinstance(value, str) and len(value) > MAX_KEY_LENGTH:
        raise ValueError(
            f"must be at most {MAX_KEY_LENGTH} characters, got {len(value)}"
        )
    return value


def _exact_amount(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError("must be a number or a decimal string such as '1054.50'")
    if isinstance(value, str) and not _DECIMAL_RE.match(value.strip()):
        raise ValueError(f"{value!r} is not a decimal number")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} is not a decimal number") from exc
    if not amount.is_finite():
        raise ValueError("must be a finite number")
    if amount < 0:
        raise ValueError("must not be negative")
    if amount >= MAX_AMOUNT:
        raise ValueError(f"must be below {MAX_AMOUNT:f}")
    return amount


def _calendar_date(value: Any) -> date:
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise ValueError("must be a calendar date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a real calendar date") from exc


def _currency_code(value: Any) -> Any:
    if isinstance(value, str) and not is_iso_4217(value):
        raise ValueError(f"{value!r} is not an upper-case ISO 4217 currency code")
    return value


NonBlank = Annotated[str, BeforeValidator(_non_blank), Field(max_length=1000)]
Amount = Annotated[Decimal, BeforeValidator(_exact_amount)]
CalendarDate = Annotated[date, BeforeValidator(_calendar_date)]
#: Largest Capsule id accepted (a signed 64-bit integer).
MAX_CAPSULE_ID = 2**63 - 1
CapsuleId = Annotated[StrictInt, Field(gt=0, le=MAX_CAPSULE_ID)]
IdempotencyKey = Annotated[
    str,
    BeforeValidator(_printable_key),
    BeforeValidator(_non_blank),
    Field(min_length=1, max_length=MAX_KEY_LENGTH),
]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class PartyRef(_Model):
    """A party named instead of given by id."""

    name: NonBlank


class MilestoneRef(_Model):
    """A milestone named inside its pipeline (names repeat across pipelines)."""

    pipeline: NonBlank
    name: NonBlank


def _one_of(*names: str) -> dict[str, Any]:
    """JSON Schema: exactly one of ``names`` is given."""
    return {"oneOf": [{"required": [name]} for name in names]}


def _not_both(first: str, second: str) -> dict[str, Any]:
    """JSON Schema: ``first`` and ``second`` are not both given."""
    return {"not": {"required": [first, second]}}


class OwnerRef(_Model):
    """A user named by username or by full name."""

    model_config = ConfigDict(json_schema_extra=_one_of("username", "name"))

    username: NonBlank | None = None
    name: NonBlank | None = None

    @model_validator(mode="after")
    def _one_of(self) -> OwnerRef:
        if (self.username is None) == (self.name is None):
            raise ValueError("give exactly one of username or name")
        return self


class TeamRef(_Model):
    """A team named instead of given by id."""

    name: NonBlank


class Value(_Model):
    """An exact amount with its ISO 4217 currency."""

    amount: Amount
    currency: Annotated[str, BeforeValidator(_currency_code)]


class FieldValue(_Model):
    """One custom field value, its definition given by id or by name."""

    model_config = ConfigDict(json_schema_extra=_one_of("definitionId", "definition"))

    definition_id: CapsuleId | None = None
    definition: NonBlank | None = None
    value: str | int | float | bool | None

    @model_validator(mode="after")
    def _one_definition(self) -> FieldValue:
        if (self.definition_id is None) == (self.definition is None):
            raise ValueError("give exactly one of definitionId or definition")
        return self


AccountName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class Job(_Model):
    """One opportunity to create, as a producer asked for it."""

    # The id-or-name rules, stated in the published schema too (a null
    # counts as absent, which JSON Schema's "required" cannot say).
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                _one_of("partyId", "party"),
                _one_of("milestoneId", "milestone"),
                _not_both("ownerId", "owner"),
                _not_both("teamId", "team"),
            ]
        }
    )

    idempotency_key: IdempotencyKey | None = None
    account: AccountName | None = None
    name: NonBlank
    party_id: CapsuleId | None = None
    party: PartyRef | None = None
    milestone_id: CapsuleId | None = None
    milestone: MilestoneRef | None = None
    description: str | None = Field(default=None, max_length=100_000)
    value: Value | None = None
    expected_close_on: CalendarDate | None = None
    probability: Annotated[StrictInt, Field(ge=0, le=100)] | None = None
    owner_id: CapsuleId | None = None
    owner: OwnerRef | None = None
    team_id: CapsuleId | None = None
    team: TeamRef | None = None
    fields: list[FieldValue] | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _references(self) -> Job:
        _either("partyId", self.party_id, "party", self.party, required=True)
        _either("milestoneId", self.milestone_id, "milestone", self.milestone, True)
        _either("ownerId", self.owner_id, "owner", self.owner, required=False)
        _either("teamId", self.team_id, "team", self.team, required=False)
        return self

    @property
    def key(self) -> str:
        """The idempotency key: given, or derived from the content."""
        return self.idempotency_key or derive_key(self)

    def canonical(self) -> dict[str, Any]:
        """Return the job as plain JSON data, amounts as exact strings."""
        data = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        if self.value is not None:
            data["value"]["amount"] = format(self.value.amount, "f")
        return data

    def fingerprint(self) -> str:
        """Return a hash of the content; equal jobs have equal fingerprints."""
        return _sha256(_stable_json(self.canonical()))


def _either(
    id_name: str, id_value: Any, ref_name: str, ref: Any, required: bool
) -> None:
    if id_value is not None and ref is not None:
        raise ValueError(f"give {id_name} or {ref_name}, not both")
    if required and id_value is None and ref is None:
        raise ValueError(f"{id_name} or {ref_name} is required")


def derive_key(job: Job) -> str:
    """Return a stable key for a job that came without one."""
    content = job.canonical()
    content.pop("idempotencyKey", None)
    return "auto-" + _sha256(_stable_json(content))[:40]


def parse_job(data: Any) -> Job:
    """Validate one job object.

    Raises:
        JobInvalid: with one ``(field, message)`` pair per problem.
    """
    if not isinstance(data, dict):
        raise JobInvalid([("(job)", f"must be a JSON object, got {_json_type(data)}")])
    if not _is_unicode(data):
        raise JobInvalid(
            [
                (
                    "(job)",
                    "contains a lone surrogate (\\ud800-\\udfff), "
                    "which is not valid Unicode text",
                )
            ]
        )
    reference_problems = _reference_problems(data)
    try:
        job = Job.model_validate(data)
    except ValidationError as exc:
        problems = _problems(exc)
        if reference_problems:  # the model repeats them without a field name
            problems = [p for p in problems if p[0] != "(job)"]
        raise JobInvalid(reference_problems + problems) from None
    if reference_problems:
        raise JobInvalid(reference_problems)
    return job


#: Each reference: its id field, its by-name field, and whether it is required.
_REFERENCES = (
    ("partyId", "party", True),
    ("milestoneId", "milestone", True),
    ("ownerId", "owner", False),
    ("teamId", "team", False),
)


def _reference_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Check the id-or-name rules on the raw object, so they are reported
    together with field errors instead of after them."""
    problems = []
    for id_name, ref_name, required in _REFERENCES:
        given_id = data.get(id_name) is not None
        given_ref = data.get(ref_name) is not None
        if given_id and given_ref:
            problems.append((ref_name, f"give {id_name} or {ref_name}, not both"))
        elif required and not (given_id or given_ref):
            problems.append((ref_name, f"is required (or give {id_name})"))
    return problems


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "(job)"
        problems.append((field, _message(error)))
    return problems


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "missing" and error["loc"][-1] == "currency":
        return "is required when amount is set"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known job field"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _is_unicode(data: Any) -> bool:
    try:
        json.dumps(data, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _stable_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
