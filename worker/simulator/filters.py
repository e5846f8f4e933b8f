"""``POST /opportunities/filters/results``: structured opportunity queries.

A filter is a list of conditions, all of which must hold::

    {"filter": {"conditions": [
        {"field": "custom:501", "operator": "is", "value": "job-42"},
        {"field": "owner", "operator": "is", "value": 101}
    ]}}

Fields: ``name``, ``owner``, ``team``, ``milestone``, ``pipeline`` (by id,
or by name / username), ``addedOn`` and ``updatedOn`` (dates), and
``custom:{definitionId}``. Operators: ``is``, ``is not``, ``contains``;
dates take ``is after`` and ``is before``. A ``custom:N is V`` condition
is answered from the field-value index, so looking a record up by an
external key costs O(1) however many opportunities exist.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from .changes import FieldProblem, parse_day
from .errors import BadRequest, invalid
from .model import Opportunity
from .state import SimulatorState

Accessor = Callable[[Opportunity], Any]
Test = Callable[[Any], bool]

#: Operators valid for value fields.
VALUE_OPERATORS = ("is", "is not", "contains")
#: Operators valid for date fields.
DATE_OPERATORS = ("is", "is after", "is before")


@dataclass(frozen=True)
class Condition:
    """One compiled condition: what to read and how to test it."""

    read: Accessor
    test: Test
    indexed_field: tuple[int, str] | None = None

    def holds(self, opp: Opportunity) -> bool:
        """Tell whether the opportunity meets the condition."""
        return self.test(self.read(opp))


def run_filter(state: SimulatorState, body: Any) -> list[Opportunity]:
    """Return the opportunities meeting every condition, oldest first.

    Raises:
        BadRequest: The body is not ``{"filter": {"conditions": [...]}}``.
        ValidationFailed: A field name or operator is unknown.
    """
    conditions = [_compile(state, raw) for raw in _raw_conditions(body)]
    candidates = _candidates(state, conditions)

    return [opp for opp in candidates if all(c.holds(opp) for c in conditions)]


def _raw_conditions(body: Any) -> list[Any]:
    spec = body.get("filter") if isinstance(body, dict) else None
    conditions = spec.get("conditions") if isinstance(spec, dict) else None
    if not isinstance(conditions, list):
        raise BadRequest('Expected {"filter": {"conditions": [...]}}.')

    return conditions


def _candidates(
    state: SimulatorState, conditions: list[Condition]
) -> list[Opportunity]:
    for condition in conditions:
        if condition.indexed_field is not None:
            ids = state.opportunities.ids_with_field(*condition.indexed_field)
            found = (state.opportunities.get(opp_id) for opp_id in ids)
            return [opp for opp in found if opp is not None]

    return state.opportunities.all()


def _compile(state: SimulatorState, raw: Any) -> Condition:
    if not isinstance(raw, dict):
        raise BadRequest("Each filter condition must be an object.")
    name, operator, value = raw.get("field"), raw.get("operator"), raw.get("value")
    if not isinstance(name, str):
        raise invalid("invalid field name", "field", "filter")

    if name.startswith("custom:"):
        return _custom_condition(state, name, operator, value)
    if name in ("addedOn", "updatedOn"):
        return _date_condition(name, operator, value)
    if name == "name":
        return Condition(lambda opp: opp.name, _value_test(operator, value))
    if name in _ENTITY_LABELS:
        target = _resolve_entity(state, name, value)
        return Condition(_entity_reader(state, name), _value_test(operator, target))

    raise invalid("invalid field name", "field", "filter")


def _custom_condition(
    state: SimulatorState, name: str, operator: Any, value: Any
) -> Condition:
    suffix = name.removeprefix("custom:")
    if not suffix.isdigit() or int(suffix) not in state.field_definitions:
        raise invalid("invalid field name", "field", "filter")

    definition_id = int(suffix)
    indexed = (definition_id, str(value)) if operator == "is" else None
    return Condition(
        lambda opp: _field_value(opp, definition_id),
        _value_test(operator, None if value is None else str(value)),
        indexed,
    )


def _field_value(opp: Opportunity, definition_id: int) -> str | None:
    for item in opp.fields:
        if item.definition_id == definition_id:
            return str(item.value)

    return None


def _date_condition(name: str, operator: Any, value: Any) -> Condition:
    if operator not in DATE_OPERATORS:
        raise invalid("invalid operator", "operator", "filter")
    try:
        target = parse_day(value, "value")
    except FieldProblem as exc:
        raise invalid(exc.error.message, "value", "filter") from exc

    def read(opp: Opportunity) -> date:
        moment = opp.created_at if name == "addedOn" else opp.updated_at
        return moment.date()

    tests: dict[str, Test] = {
        "is": lambda day: bool(day == target),
        "is after": lambda day: bool(day > target),
        "is before": lambda day: bool(day < target),
    }
    return Condition(read, tests[operator])


def _value_test(operator: Any, target: Any) -> Test:
    if operator == "is":
        return lambda actual: bool(actual == target)
    if operator == "is not":
        return lambda actual: bool(actual != target)
    if operator == "contains":
        needle = str(target).lower()
        return lambda actual: actual is not None and needle in str(actual).lower()

    raise invalid("invalid operator", "operator", "filter")


def _resolve_entity(state: SimulatorState, name: str, value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return int(value)

    wanted = str(value).lower()
    for entity_id, label in _ENTITY_LABELS[name](state):
        if label.lower() == wanted:
            return entity_id

    return -1


def _owner_labels(state: SimulatorState) -> list[tuple[int, str]]:
    by_name = [(user.id, user.name) for user in state.users.values()]
    return [(user.id, user.username) for user in state.users.values()] + by_name


def _entity_reader(state: SimulatorState, name: str) -> Accessor:
    if name == "pipeline":
        return lambda opp: state.milestones[opp.milestone_id].pipeline_id

    attribute = f"{name}_id"
    return lambda opp: getattr(opp, attribute)


_ENTITY_LABELS: dict[str, Callable[[SimulatorState], list[tuple[int, str]]]] = {
    "owner": _owner_labels,
    "team": lambda state: [(t.id, t.name) for t in state.teams.values()],
    "milestone": lambda state: [(m.id, m.name) for m in state.milestones.values()],
    "pipeline": lambda state: [(p.id, p.name) for p in state.pipelines.values()],
}
