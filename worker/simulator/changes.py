"""Reading an opportunity body (POST or PUT) into checked values.

Each key of ``{"opportunity": {...}}`` has one reader that checks its
shape and that referenced entities exist. Problems are collected, not
raised one by one, so a 422 lists every broken field at once, as Capsule
does. Rules that involve several keys (owner in team, probability on a
closed milestone) live in :mod:`worker.simulator.lifecycle`.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any, Final, TypeGuard

from .errors import BadRequest, FieldError, ValidationFailed
from .model import FieldDefinition, Money
from .state import SimulatorState


class Unset(Enum):
    """Marks a key the request body did not carry."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET

#: Values ``durationBasis`` accepts (reference §2.2).
DURATION_BASES = ("FIXED", "HOUR", "DAY", "WEEK", "MONTH", "QUARTER", "YEAR")
_CURRENCY = re.compile(r"[A-Z]{3}")
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class FieldProblem(Exception):
    """A single key of the body is wrong; becomes one 422 entry."""

    def __init__(self, message: str, field_name: str) -> None:
        super().__init__(message)
        self.error = FieldError(message, field_name)


@dataclass(frozen=True)
class FieldChange:
    """One item of the body's ``fields`` list."""

    definition_id: int | None
    value: Any
    field_id: int | None = None
    delete: bool = False


@dataclass
class OpportunityChanges:
    """The checked keys of one body; keys it did not carry are UNSET."""

    name: str | Unset = UNSET
    description: str | Unset | None = UNSET
    party_id: int | Unset = UNSET
    milestone_id: int | Unset = UNSET
    owner_id: int | Unset | None = UNSET
    team_id: int | Unset | None = UNSET
    value: Money | Unset | None = UNSET
    expected_close_on: date | Unset | None = UNSET
    probability: int | Unset | None = UNSET
    duration_basis: str | Unset = UNSET
    duration: int | Unset | None = UNSET
    fields: list[FieldChange] = field(default_factory=list)


def unwrap_body(body: Any) -> dict[str, Any]:
    """Return the object under ``opportunity``.

    Raises:
        BadRequest: The body is not ``{"opportunity": {...}}``.
    """
    inner = body.get("opportunity") if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        raise BadRequest('Expected a JSON object with an "opportunity" object.')

    return inner


def read_changes(state: SimulatorState, raw: dict[str, Any]) -> OpportunityChanges:
    """Check every known key of an opportunity body.

    Raises:
        ValidationFailed: At least one key is malformed or points nowhere.
    """
    changes = OpportunityChanges()
    problems: list[FieldError] = []
    for key, (attribute, reader) in _READERS.items():
        if key not in raw:
            continue
        try:
            setattr(changes, attribute, reader(state, raw[key]))
        except FieldProblem as problem:
            problems.append(problem.error)

    if problems:
        raise ValidationFailed(problems)

    return changes


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_name(_: SimulatorState, raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise FieldProblem("name is required", "name")

    return raw


def _read_description(_: SimulatorState, raw: Any) -> str | None:
    if raw is not None and not isinstance(raw, str):
        raise FieldProblem("description must be a string", "description")

    return raw


def _reference_id(raw: Any, name: str) -> int:
    if raw is None:
        raise FieldProblem(f"{name} is required", name)
    ref = raw.get("id") if isinstance(raw, dict) else None
    if not _is_int(ref):
        raise FieldProblem(f'{name} must be an object with an integer "id"', name)

    return int(ref)


def _read_party(state: SimulatorState, raw: Any) -> int:
    party_id = _reference_id(raw, "party")
    if party_id not in state.parties:
        raise FieldProblem("party not found", "party")

    return party_id


def _read_milestone(state: SimulatorState, raw: Any) -> int:
    milestone_id = _reference_id(raw, "milestone")
    if milestone_id not in state.milestones:
        raise FieldProblem("milestone not found", "milestone")

    return milestone_id


def _read_owner(state: SimulatorState, raw: Any) -> int | None:
    if raw is None:
        return None
    owner_id = _reference_id(raw, "owner")
    if owner_id not in state.users:
        raise FieldProblem("owner not found", "owner")

    return owner_id


def _read_team(state: SimulatorState, raw: Any) -> int | None:
    if raw is None:
        return None
    team_id = _reference_id(raw, "team")
    if team_id not in state.teams:
        raise FieldProblem("team not found", "team")

    return team_id


def _read_value(_: SimulatorState, raw: Any) -> Money | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise FieldProblem("value must be an object with amount and currency", "value")
    amount, currency = raw.get("amount"), raw.get("currency")
    if amount is None:
        return None

    return Money(_check_amount(amount), _check_currency(currency))


def _check_amount(amount: Any) -> Decimal:
    if not (_is_int(amount) or isinstance(amount, Decimal)):
        raise FieldProblem("value.amount must be a number", "value")
    exact = Decimal(amount)
    if not exact.is_finite():
        raise FieldProblem("value.amount must be a finite number", "value")

    return exact


def _check_currency(currency: Any) -> str:
    if currency is None:
        raise FieldProblem(
            "value.currency is required when value.amount is set", "value"
        )
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise FieldProblem("value.currency must be a 3-letter ISO 4217 code", "value")

    return currency


def _read_day(_: SimulatorState, raw: Any) -> date | None:
    if raw is None:
        return None

    return parse_day(raw, "expectedCloseOn")


def parse_day(raw: Any, name: str) -> date:
    """Parse a strict ``YYYY-MM-DD`` date or raise a :class:`FieldProblem`."""
    if not isinstance(raw, str) or not _ISO_DAY.fullmatch(raw):
        raise FieldProblem(f"{name} must be a date formatted YYYY-MM-DD", name)
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise FieldProblem(f"{name} is not a real calendar date", name) from exc


def _read_probability(_: SimulatorState, raw: Any) -> int | None:
    if raw is None:
        return None
    if not _is_int(raw) or not 0 <= raw <= 100:
        raise FieldProblem(
            "probability must be an integer from 0 to 100", "probability"
        )

    return int(raw)


def _read_duration_basis(_: SimulatorState, raw: Any) -> str:
    if raw not in DURATION_BASES:
        raise FieldProblem(
            f"durationBasis must be one of {DURATION_BASES}", "durationBasis"
        )

    return str(raw)


def _read_duration(_: SimulatorState, raw: Any) -> int | None:
    if raw is not None and (not _is_int(raw) or raw < 0):
        raise FieldProblem("duration must be a non-negative integer", "duration")

    return None if raw is None else int(raw)


def _read_fields(state: SimulatorState, raw: Any) -> list[FieldChange]:
    if not isinstance(raw, list):
        raise FieldProblem("fields must be a list", "fields")

    return [_read_field_item(state, item) for item in raw]


def _read_field_item(state: SimulatorState, item: Any) -> FieldChange:
    if not isinstance(item, dict):
        raise FieldProblem("each fields item must be an object", "fields")
    field_id = item.get("id")
    if item.get("_delete") is True and _is_int(field_id):
        return FieldChange(None, None, field_id, delete=True)

    definition = _field_definition(state, item.get("definition"))
    value = _check_field_value(definition, item.get("value"))
    return FieldChange(definition.id, value, field_id if _is_int(field_id) else None)


def _field_definition(state: SimulatorState, raw: Any) -> FieldDefinition:
    definition_id = raw.get("id") if isinstance(raw, dict) else raw
    if not _is_int(definition_id):
        raise FieldProblem("fields.definition must be an id or {id}", "fields")
    definition = state.field_definitions.get(definition_id)
    if definition is None:
        raise FieldProblem("field definition not found", "fields")

    return definition


def _check_field_value(definition: FieldDefinition, value: Any) -> Any:
    kind = definition.type.lower()
    if kind == "boolean":
        if not isinstance(value, bool):
            raise FieldProblem("field.value: invalid type for field", "fields")
        return value
    if value is None:
        return None
    if kind == "number":
        if not (_is_int(value) or isinstance(value, Decimal)):
            raise FieldProblem("field.value: invalid type for field", "fields")
        # Capsule reads NUMBER values back as strings (reference §2.3).
        return str(value)
    if kind == "date":
        return parse_day(value, "fields").isoformat()
    if not isinstance(value, str):
        raise FieldProblem("field.value: invalid type for field", "fields")

    return value


_Reader = Callable[[SimulatorState, Any], Any]
_READERS: dict[str, tuple[str, _Reader]] = {
    "name": ("name", _read_name),
    "description": ("description", _read_description),
    "party": ("party_id", _read_party),
    "milestone": ("milestone_id", _read_milestone),
    "owner": ("owner_id", _read_owner),
    "team": ("team_id", _read_team),
    "value": ("value", _read_value),
    "expectedCloseOn": ("expected_close_on", _read_day),
    "probability": ("probability", _read_probability),
    "durationBasis": ("duration_basis", _read_duration_basis),
    "duration": ("duration", _read_duration),
    "fields": ("fields", _read_fields),
}
