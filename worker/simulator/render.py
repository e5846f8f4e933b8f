"""Wire shapes of the simulated entities (reference §2.4 and §4)."""

from datetime import date, datetime
from typing import Any

from .model import FieldDefinition, Milestone, Opportunity, Party, Pipeline, Team, User
from .state import SimulatorState

JSONObject = dict[str, Any]


def timestamp(moment: datetime) -> str:
    """Format a UTC time as Capsule does, e.g. ``2015-10-29T12:55:12Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def day(value: date | None) -> str | None:
    """Format a date as ``YYYY-MM-DD``, keeping None."""
    return value.isoformat() if value is not None else None


def user_ref(user: User) -> JSONObject:
    """Return the nested form of a user, as in ``owner``."""
    return {"id": user.id, "username": user.username, "name": user.name}


def user(user: User) -> JSONObject:
    """Return the full form of a user."""
    return {**user_ref(user), "status": "ACTIVE", "party": None}


def team(state: SimulatorState, team: Team, with_members: bool) -> JSONObject:
    """Return a team, with ``memberships`` when asked for."""
    body: JSONObject = {"id": team.id, "name": team.name}
    if with_members:
        body["memberships"] = [
            {"user": user_ref(state.users[user_id])}
            for user_id in sorted(team.member_ids)
            if user_id in state.users
        ]

    return body


def party(party: Party) -> JSONObject:
    """Return a party."""
    return {
        "id": party.id,
        "type": party.type,
        "name": party.name,
        "createdAt": timestamp(party.created_at),
        "updatedAt": timestamp(party.created_at),
        "owner": None,
        "team": None,
    }


def pipeline(pipeline: Pipeline) -> JSONObject:
    """Return a pipeline."""
    return {
        "id": pipeline.id,
        "name": pipeline.name,
        "description": pipeline.description,
        "createdAt": timestamp(pipeline.created_at),
        "updatedAt": timestamp(pipeline.created_at),
    }


def milestone(state: SimulatorState, milestone: Milestone) -> JSONObject:
    """Return a milestone with its pipeline reference."""
    owner = state.pipelines[milestone.pipeline_id]
    return {
        "id": milestone.id,
        "name": milestone.name,
        "description": None,
        "probability": milestone.probability,
        "complete": milestone.complete,
        "daysUntilStale": None,
        "pipeline": {"id": owner.id, "name": owner.name},
        "createdAt": timestamp(milestone.created_at),
        "updatedAt": timestamp(milestone.created_at),
    }


def field_definition(definition: FieldDefinition, order: int) -> JSONObject:
    """Return a custom field definition."""
    return {
        "id": definition.id,
        "name": definition.name,
        "type": definition.type,
        "description": None,
        "displayOrder": order,
        "important": False,
        "tag": None,
        "options": [],
    }


def opportunity(
    state: SimulatorState, opp: Opportunity, with_fields: bool = False
) -> JSONObject:
    """Return an opportunity; ``fields`` only when asked for (embed=fields)."""
    body: JSONObject = {
        "id": opp.id,
        "createdAt": timestamp(opp.created_at),
        "updatedAt": timestamp(opp.updated_at),
        "party": _party_ref(state, opp.party_id),
        "name": opp.name,
        "description": opp.description,
        "owner": _owner_ref(state, opp.owner_id),
        "team": _team_ref(state, opp.team_id),
        "milestone": _milestone_ref(state, opp.milestone_id),
        "value": _money(opp),
        "expectedCloseOn": day(opp.expected_close_on),
        "probability": opp.probability,
        "durationBasis": opp.duration_basis,
        "duration": opp.duration,
        "closedOn": day(opp.closed_on),
        "lostReason": None,
        "lastContactedAt": None,
        "lastStageChangedAt": timestamp(opp.last_stage_changed_at),
        "lastOpenMilestone": _milestone_ref(state, opp.last_open_milestone_id),
    }
    if with_fields:
        body["fields"] = _fields(state, opp)

    return body


def _party_ref(state: SimulatorState, party_id: int) -> JSONObject:
    found = state.parties[party_id]
    return {"id": found.id, "type": found.type, "name": found.name}


def _owner_ref(state: SimulatorState, user_id: int | None) -> JSONObject | None:
    return user_ref(state.users[user_id]) if user_id is not None else None


def _team_ref(state: SimulatorState, team_id: int | None) -> JSONObject | None:
    if team_id is None:
        return None

    return {"id": team_id, "name": state.teams[team_id].name}


def _milestone_ref(state: SimulatorState, milestone_id: int) -> JSONObject:
    return {"id": milestone_id, "name": state.milestones[milestone_id].name}


def _money(opp: Opportunity) -> JSONObject | None:
    if opp.value is None:
        return None

    return {"amount": opp.value.amount, "currency": opp.value.currency}


def _fields(state: SimulatorState, opp: Opportunity) -> list[JSONObject]:
    return [
        {
            "id": item.id,
            "definition": {
                "id": item.definition_id,
                "name": state.field_definitions[item.definition_id].name,
            },
            "value": item.value,
            "tagId": None,
        }
        for item in opp.fields
    ]
