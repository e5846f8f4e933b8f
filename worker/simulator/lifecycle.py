"""The rules for creating, changing and deleting an opportunity.

Owner and team follow Capsule's asymmetric writes (reference §2.3):

- on create they are independent; with neither given the owner is the
  token's user, with only a team given the record is team-owned;
- on update, ``owner`` without ``team`` clears the team, ``team`` alone
  keeps the owner, and both together set both;
- whenever both end up set, the owner must be a member of the team.

Automation rules fire only on create (a PUT never re-fires them).
"""

import asyncio

from .changes import UNSET, FieldChange, OpportunityChanges, Unset
from .errors import FieldError, ValidationFailed, invalid
from .model import AutomationRule, FieldValue, Opportunity, TokenGrant
from .state import SimulatorState

NOT_MEMBER = "owner is not a member of the team"
OWNER_OR_TEAM = "owner or team is required"
CLOSED_PROBABILITY = "probability can be updated only for open opportunity"


def create_opportunity(
    state: SimulatorState, grant: TokenGrant, changes: OpportunityChanges
) -> Opportunity:
    """Store a new opportunity built from a checked POST body.

    Raises:
        ValidationFailed: A required key is missing or owner and team clash.
    """
    name, party_id, milestone_id = _required_create_keys(changes)
    owner_id, team_id = _creation_owner_team(changes, grant)
    _check_owner_team(state, owner_id, team_id)

    now = state.clock()
    opp = Opportunity(
        id=state.ids.take("opportunity"),
        name=name,
        party_id=party_id,
        milestone_id=milestone_id,
        last_open_milestone_id=milestone_id,
        probability=0,
        created_at=now,
        updated_at=now,
        last_stage_changed_at=now,
        owner_id=owner_id,
        team_id=team_id,
    )
    _apply_plain_keys(opp, changes)
    _enter_milestone(state, opp, milestone_id, changes.probability)
    opp.fields = _merge_fields(state, [], changes.fields)
    state.opportunities.add(opp)

    return opp


def update_opportunity(
    state: SimulatorState, opp: Opportunity, changes: OpportunityChanges
) -> None:
    """Apply a checked PUT body; only the keys it carried change.

    Raises:
        ValidationFailed: The change breaks a rule; nothing was changed.
    """
    owner_id, team_id = _updated_owner_team(opp, changes)
    if changes.owner_id is not UNSET or changes.team_id is not UNSET:
        _check_owner_team(state, owner_id, team_id)
    _check_probability_on_close(state, opp, changes)
    new_fields = _merge_fields(state, opp.fields, changes.fields)

    opp.owner_id, opp.team_id = owner_id, team_id
    _apply_plain_keys(opp, changes)
    if changes.party_id is not UNSET and changes.party_id != opp.party_id:
        state.opportunities.move_party(opp, changes.party_id)
    _apply_milestone_change(state, opp, changes)
    state.opportunities.replace_fields(opp, new_fields)
    opp.updated_at = state.clock()


def _required_create_keys(changes: OpportunityChanges) -> tuple[str, int, int]:
    name, party_id, milestone_id = changes.name, changes.party_id, changes.milestone_id
    if (
        isinstance(name, str)
        and isinstance(party_id, int)
        and isinstance(milestone_id, int)
    ):
        return name, party_id, milestone_id

    raise ValidationFailed(
        [
            FieldError(f"{key} is required", key)
            for key, value in (
                ("name", changes.name),
                ("party", changes.party_id),
                ("milestone", changes.milestone_id),
            )
            if value is UNSET
        ]
    )


def _creation_owner_team(
    changes: OpportunityChanges, grant: TokenGrant
) -> tuple[int | None, int | None]:
    team_id = None if changes.team_id is UNSET else changes.team_id
    if changes.owner_id is not UNSET:
        return changes.owner_id, team_id

    # Capsule defaults the owner to the token's user, but not when a team
    # alone is given: then the record is team-owned (reference §2.2).
    return (grant.user_id if team_id is None else None), team_id


def _updated_owner_team(
    opp: Opportunity, changes: OpportunityChanges
) -> tuple[int | None, int | None]:
    owner_id, team_id = opp.owner_id, opp.team_id
    if changes.owner_id is not UNSET:
        # Sending owner without team clears the team (reference §2.3).
        owner_id, team_id = changes.owner_id, None
    if changes.team_id is not UNSET:
        team_id = changes.team_id

    return owner_id, team_id


def _check_owner_team(
    state: SimulatorState, owner_id: int | None, team_id: int | None
) -> None:
    if owner_id is None and team_id is None:
        raise invalid(OWNER_OR_TEAM, "owner")
    if owner_id is None or team_id is None:
        return
    if owner_id not in state.teams[team_id].member_ids:
        raise invalid(NOT_MEMBER, "owner")


def _check_probability_on_close(
    state: SimulatorState, opp: Opportunity, changes: OpportunityChanges
) -> None:
    if changes.probability is UNSET:
        return

    target = opp.milestone_id if changes.milestone_id is UNSET else changes.milestone_id
    if state.milestones[target].complete:
        raise invalid(CLOSED_PROBABILITY, "probability")


def _apply_plain_keys(opp: Opportunity, changes: OpportunityChanges) -> None:
    if changes.name is not UNSET:
        opp.name = changes.name
    if changes.description is not UNSET:
        opp.description = changes.description
    if changes.value is not UNSET:
        opp.value = changes.value
    if changes.expected_close_on is not UNSET:
        opp.expected_close_on = changes.expected_close_on
    if changes.duration_basis is not UNSET:
        opp.duration_basis = changes.duration_basis
    if changes.duration is not UNSET:
        opp.duration = changes.duration


def _apply_milestone_change(
    state: SimulatorState, opp: Opportunity, changes: OpportunityChanges
) -> None:
    if changes.milestone_id is not UNSET and changes.milestone_id != opp.milestone_id:
        opp.last_stage_changed_at = state.clock()
        _enter_milestone(state, opp, changes.milestone_id, changes.probability)
    elif isinstance(changes.probability, int):
        opp.probability = changes.probability


def _enter_milestone(
    state: SimulatorState,
    opp: Opportunity,
    milestone_id: int,
    probability: int | Unset | None,
) -> None:
    milestone = state.milestones[milestone_id]
    opp.milestone_id = milestone_id
    if milestone.complete:
        opp.closed_on = state.clock().date()
        opp.probability = milestone.probability
        return

    opp.closed_on = None
    opp.last_open_milestone_id = milestone_id
    opp.probability = (
        probability if isinstance(probability, int) else milestone.probability
    )


def _merge_fields(
    state: SimulatorState, current: list[FieldValue], changes: list[FieldChange]
) -> list[FieldValue]:
    merged = {
        item.id: FieldValue(item.id, item.definition_id, item.value) for item in current
    }
    for change in changes:
        target = _field_target(merged, change)
        if change.delete or change.value is None:
            merged.pop(target, None)
        elif target in merged:
            merged[target].value = change.value
        elif change.definition_id is not None:
            new_id = state.ids.take("fieldValue")
            merged[new_id] = FieldValue(new_id, change.definition_id, change.value)

    return list(merged.values())


def _field_target(merged: dict[int, FieldValue], change: FieldChange) -> int:
    if change.field_id is not None and change.field_id in merged:
        return change.field_id

    # Without a known id the value replaces the one of the same definition.
    for item in merged.values():
        if item.definition_id == change.definition_id:
            return item.id

    return -1


def apply_automation(
    state: SimulatorState, opportunity_id: int, rule: AutomationRule
) -> None:
    """Apply a milestone-reached rule to an opportunity that still exists."""
    opp = state.opportunities.get(opportunity_id)
    if opp is None:
        return

    if rule.assign_team_id is not None and rule.assign_team_id in state.teams:
        opp.team_id = rule.assign_team_id
    if rule.clear_owner:
        opp.owner_id = None
    opp.updated_at = state.clock()
    state.stats.automation_fires += 1


def fire_create_automations(
    state: SimulatorState, opp: Opportunity
) -> list[AutomationRule]:
    """Apply the sync rules for a new opportunity; return the delayed ones.

    The caller hands the delayed rules to :func:`schedule_automations`
    once the POST has been answered.
    """
    rules = [
        rule for rule in state.automations if rule.milestone_id == opp.milestone_id
    ]
    for rule in rules:
        if rule.timing == "sync":
            apply_automation(state, opp.id, rule)

    return [rule for rule in rules if rule.timing == "delayed"]


async def schedule_automations(
    state: SimulatorState, opportunity_id: int, rules: list[AutomationRule]
) -> None:
    """Apply each rule ``delay_s`` seconds from now on the running loop.

    Returns at once, so the connection is free for the next request while
    the rules wait; a client that trusts the POST answer misses them.
    """
    loop = asyncio.get_running_loop()
    for rule in rules:
        loop.call_later(rule.delay_s, apply_automation, state, opportunity_id, rule)
