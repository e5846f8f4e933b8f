"""Seed files: the tenant a simulator starts with.

A seed is one JSON object. Every key is optional; entities may carry an
explicit ``id`` (needed wherever another entry refers to them), otherwise
one is assigned from the kind's id range (users 101+, teams 201+,
pipelines 301+, milestones 401+, field definitions 501+, parties 1001+)::

    {
      "users": [{"id": 1, "username": "ann.lee", "name": "Ann Lee"}],
      "teams": [{"id": 10, "name": "East", "members": [1]}],
      "parties": [
        {"id": 100, "type": "organisation", "name": "Acme"},
        {"type": "person", "firstName": "Bo", "lastName": "Tan"}
      ],
      "pipelines": [{
        "id": 20, "name": "Sales", "description": null,
        "milestones": [
          {"id": 30, "name": "Prospecting", "probability": 10},
          {"id": 31, "name": "Won", "probability": 100, "complete": true}
        ]
      }],
      "fieldDefinitions": [{"id": 40, "name": "job key", "type": "text"}],
      "automations": [{
        "milestone": 30, "assignTeam": 10, "clearOwner": true,
        "timing": "sync" | "delayed", "delay_s": 0.2
      }],
      "tokens": {"secret-token": {"user": 1, "scope": "write" | "read"}},
      "rateLimit": {"limit": 4000, "window_s": 3600}
    }

``members``, ``milestone``, ``assignTeam`` and ``user`` refer to ids.
Milestones default to ``probability`` 0 and ``complete`` false; field
types are Capsule's (text, number, date, boolean, list, ...).
"""

import json
from pathlib import Path
from typing import Any

from .model import AutomationRule, TokenGrant
from .state import SimulatorState


class SeedError(ValueError):
    """The seed is malformed or refers to an entity it does not define."""


def load_seed(path: Path) -> SimulatorState:
    """Read a seed file and build the tenant it describes.

    Raises:
        SeedError: The file is not a valid seed.
    """
    try:
        seed = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SeedError(f"Could not read seed {path}: {exc}.") from exc

    return state_from_seed(seed)


def state_from_seed(seed: dict[str, Any]) -> SimulatorState:
    """Build a tenant from a seed object (see the module docstring).

    Raises:
        SeedError: The seed is malformed or has dangling references.
    """
    state = SimulatorState()
    try:
        _add_directory(state, seed)
        state.automations = [
            parse_automation(state, raw) for raw in seed.get("automations", [])
        ]
        state.tokens = parse_tokens(state, seed.get("tokens", {}))
        _configure_rate_limit(state, seed.get("rateLimit"))
    except SeedError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise SeedError(f"Invalid seed: {exc!r}.") from exc

    return state


def _add_directory(state: SimulatorState, seed: dict[str, Any]) -> None:
    for raw in seed.get("users", []):
        state.add_user(raw["username"], raw["name"], raw.get("id"))
    for raw in seed.get("teams", []):
        add_team(state, raw)
    for raw in seed.get("parties", []):
        add_party(state, raw)
    for raw in seed.get("pipelines", []):
        _add_pipeline(state, raw)
    for raw in seed.get("fieldDefinitions", []):
        state.add_field_definition(raw["name"], raw.get("type", "text"), raw.get("id"))


def add_team(state: SimulatorState, raw: dict[str, Any]) -> None:
    """Add one seed team, checking that its members exist."""
    members = {int(user_id) for user_id in raw.get("members", [])}
    unknown = members - state.users.keys()
    if unknown:
        raise SeedError(f"Team {raw['name']!r} names unknown users {sorted(unknown)}.")

    state.add_team(raw["name"], members, raw.get("id"))


def add_party(state: SimulatorState, raw: dict[str, Any]) -> int:
    """Add one organisation or person and return its id."""
    kind = raw.get("type", "organisation")
    name = raw.get("name")
    if name is None:
        name = f"{raw.get('firstName', '')} {raw.get('lastName', '')}".strip()
    if kind not in ("organisation", "person") or not name:
        raise SeedError(f"Expected an organisation or person with a name, got {raw!r}.")

    return state.add_party(kind, name, raw.get("id")).id


def _add_pipeline(state: SimulatorState, raw: dict[str, Any]) -> None:
    pipeline = state.add_pipeline(raw["name"], raw.get("description"), raw.get("id"))
    for stage in raw.get("milestones", []):
        state.add_milestone(
            pipeline.id,
            stage["name"],
            int(stage.get("probability", 0)),
            bool(stage.get("complete", False)),
            stage.get("id"),
        )


def parse_automation(state: SimulatorState, raw: dict[str, Any]) -> AutomationRule:
    """Build an automation rule, checking the milestone and team it names.

    Raises:
        SeedError: The rule names an unknown milestone or team, or an
            unknown timing.
    """
    milestone_id, team_id = int(raw["milestone"]), raw.get("assignTeam")
    if milestone_id not in state.milestones:
        raise SeedError(f"Automation names unknown milestone {milestone_id}.")
    if team_id is not None and team_id not in state.teams:
        raise SeedError(f"Automation names unknown team {team_id}.")
    timing = raw.get("timing", "sync")
    if timing not in ("sync", "delayed"):
        raise SeedError(f"Expected timing sync or delayed, got {timing!r}.")

    return AutomationRule(
        milestone_id=milestone_id,
        assign_team_id=team_id,
        clear_owner=bool(raw.get("clearOwner", False)),
        timing=timing,
        delay_s=float(raw.get("delay_s", 0.0)),
    )


def parse_tokens(state: SimulatorState, raw: dict[str, Any]) -> dict[str, TokenGrant]:
    """Build the token map, checking users and scopes.

    Raises:
        SeedError: A token names an unknown user or scope.
    """
    tokens: dict[str, TokenGrant] = {}
    for token, grant in raw.items():
        user_id, scope = int(grant["user"]), grant.get("scope", "write")
        if user_id not in state.users or scope not in ("read", "write"):
            raise SeedError(f"Token grant {grant!r} names an unknown user or scope.")
        tokens[token] = TokenGrant(user_id, scope)

    return tokens


def _configure_rate_limit(state: SimulatorState, raw: dict[str, Any] | None) -> None:
    if raw is None:
        return

    limiter = state.rate_limiter
    limiter.configure(
        int(raw.get("limit", limiter.limit)),
        float(raw.get("window_s", limiter.window_s)),
    )
