"""The in-memory tenant the simulator serves.

One :class:`SimulatorState` holds everything: directory entities (users,
teams with their members, parties, pipelines, milestones, field
definitions), the opportunity store, bearer tokens, automation rules, the
rate limiter, the fault injector and the request counters. It is used from
a single event loop, so no locking is needed: handlers never await while a
change is half made.
"""

from collections.abc import Callable
from datetime import UTC, datetime

from .faults import FaultInjector
from .model import (
    AutomationRule,
    FieldDefinition,
    Milestone,
    Party,
    Pipeline,
    Team,
    TokenGrant,
    User,
)
from .ratelimit import FixedWindowRateLimiter
from .stats import RequestStats
from .store import OpportunityStore

#: First id handed out per entity kind; distinct ranges make an id passed
#: as the wrong kind fail loudly instead of hitting another record.
ID_BASES: dict[str, int] = {
    "user": 101,
    "team": 201,
    "pipeline": 301,
    "milestone": 401,
    "field": 501,
    "party": 1001,
    "fieldValue": 50001,
    "opportunity": 100001,
}


def utc_now() -> datetime:
    """Return the current UTC time."""
    return datetime.now(UTC)


class IdAllocator:
    """Hands out increasing ids per entity kind, skipping explicit ones."""

    def __init__(self) -> None:
        self._next = dict(ID_BASES)

    def take(self, kind: str, explicit: int | None = None) -> int:
        """Return ``explicit`` (reserving it) or the next free id of ``kind``."""
        if explicit is None:
            explicit = self._next[kind]
        self._next[kind] = max(self._next[kind], explicit + 1)

        return explicit


class SimulatorState:
    """Everything one simulated Capsule tenant knows.

    Args:
        clock: Source of the current UTC time, replaceable in tests.
    """

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self.clock = clock
        self.ids = IdAllocator()
        self.users: dict[int, User] = {}
        self.teams: dict[int, Team] = {}
        self.parties: dict[int, Party] = {}
        self.pipelines: dict[int, Pipeline] = {}
        self.milestones: dict[int, Milestone] = {}
        self.field_definitions: dict[int, FieldDefinition] = {}
        self.opportunities = OpportunityStore()
        self.tokens: dict[str, TokenGrant] = {}
        self.automations: list[AutomationRule] = []
        self.rate_limiter = FixedWindowRateLimiter()
        self.faults = FaultInjector()
        self.stats = RequestStats()

    def add_user(self, username: str, name: str, user_id: int | None = None) -> User:
        """Create a user and return it."""
        user = User(self.ids.take("user", user_id), username, name)
        self.users[user.id] = user
        return user

    def add_team(
        self, name: str, member_ids: set[int], team_id: int | None = None
    ) -> Team:
        """Create a team with the given members and return it."""
        team = Team(self.ids.take("team", team_id), name, set(member_ids))
        self.teams[team.id] = team
        return team

    def add_party(self, kind: str, name: str, party_id: int | None = None) -> Party:
        """Create an organisation or person and return it."""
        party = Party(self.ids.take("party", party_id), kind, name, self.clock())
        self.parties[party.id] = party
        return party

    def add_pipeline(
        self, name: str, description: str | None = None, pipeline_id: int | None = None
    ) -> Pipeline:
        """Create a pipeline and return it."""
        pipeline_id = self.ids.take("pipeline", pipeline_id)
        pipeline = Pipeline(pipeline_id, name, description, self.clock())
        self.pipelines[pipeline.id] = pipeline
        return pipeline

    def add_milestone(
        self,
        pipeline_id: int,
        name: str,
        probability: int,
        complete: bool,
        milestone_id: int | None = None,
    ) -> Milestone:
        """Create a milestone of a pipeline and return it."""
        milestone_id = self.ids.take("milestone", milestone_id)
        milestone = Milestone(
            milestone_id, name, pipeline_id, probability, complete, self.clock()
        )
        self.milestones[milestone.id] = milestone
        return milestone

    def add_field_definition(
        self, name: str, kind: str, definition_id: int | None = None
    ) -> FieldDefinition:
        """Create an opportunity custom field definition and return it."""
        definition = FieldDefinition(self.ids.take("field", definition_id), name, kind)
        self.field_definitions[definition.id] = definition
        return definition

    def reset(self) -> None:
        """Delete every opportunity, zero counters and windows, clear faults.

        Directory entities, tokens, automation rules and the rate-limit
        budget stay as they are.
        """
        self.opportunities.clear()
        self.rate_limiter.reset()
        self.faults.clear()
        self.faults.reset_counters()
        self.stats.reset()
