"""Entities of the simulated Capsule tenant.

Plain mutable dataclasses; rendering to the wire shape lives in
:mod:`worker.simulator.render` and the rules for changing an opportunity
in :mod:`worker.simulator.lifecycle`.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

Scope = Literal["read", "write"]
Timing = Literal["sync", "delayed"]


@dataclass
class User:
    """A Capsule user who can own opportunities."""

    id: int
    username: str
    name: str


@dataclass
class Team:
    """A team; ``member_ids`` holds the ids of its users."""

    id: int
    name: str
    member_ids: set[int] = field(default_factory=set)


@dataclass
class Party:
    """An organisation or a person."""

    id: int
    type: str
    name: str
    created_at: datetime


@dataclass
class Pipeline:
    """A sales pipeline; milestones point back to it."""

    id: int
    name: str
    description: str | None
    created_at: datetime


@dataclass
class Milestone:
    """A pipeline stage; ``complete`` is true for Won and Lost."""

    id: int
    name: str
    pipeline_id: int
    probability: int
    complete: bool
    created_at: datetime


@dataclass
class FieldDefinition:
    """A custom field that opportunities may carry."""

    id: int
    name: str
    type: str


@dataclass
class FieldValue:
    """One custom field value on one opportunity."""

    id: int
    definition_id: int
    value: Any


@dataclass
class Money:
    """An exact amount in an ISO-4217 currency."""

    amount: Decimal
    currency: str


@dataclass
class Opportunity:
    """A stored opportunity; references other entities by id."""

    id: int
    name: str
    party_id: int
    milestone_id: int
    last_open_milestone_id: int
    probability: int
    created_at: datetime
    updated_at: datetime
    last_stage_changed_at: datetime
    description: str | None = None
    owner_id: int | None = None
    team_id: int | None = None
    value: Money | None = None
    expected_close_on: date | None = None
    closed_on: date | None = None
    duration_basis: str = "FIXED"
    duration: int | None = None
    fields: list[FieldValue] = field(default_factory=list)


@dataclass(frozen=True)
class TokenGrant:
    """What a bearer token may do, and as whom."""

    user_id: int
    scope: Scope


@dataclass(frozen=True)
class AutomationRule:
    """A milestone-reached rule that fires when an opportunity is created.

    Attributes:
        milestone_id: The milestone whose entry triggers the rule.
        assign_team_id: Team to assign, or None to leave the team alone.
        clear_owner: Whether the rule empties the owner.
        timing: ``sync`` applies before the POST answers; ``delayed``
            applies ``delay_s`` seconds after it answered.
        delay_s: Seconds between the answer and a delayed rule's effect.
    """

    milestone_id: int
    assign_team_id: int | None
    clear_owner: bool
    timing: Timing
    delay_s: float
