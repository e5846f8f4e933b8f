"""The demo seed, built from the CRM sales-opportunities data set.

Mapping (see the README.md that comes with the data set):

- every account in ``accounts.csv`` becomes an organisation party;
- every salesperson and manager in ``sales_teams.csv`` becomes a user
  (``username`` is the lower-cased name with spaces as dots), plus the
  API user ``oppsync`` that owns the token;
- each regional office becomes a team of its sellers and managers, and a
  team "Engagement Desk" holds only the API user;
- one pipeline "Sales": Prospecting 10, Engaging 30, Won 100 and Lost 0
  (the last two complete);
- a text field "oppsync job key";
- entering Engaging on create fires a delayed automation that assigns
  Engagement Desk and clears the owner, as some Capsule tenants do.
"""

import csv
from pathlib import Path
from typing import Any

#: Username of the API user the demo token belongs to.
API_USERNAME = "oppsync"
#: Name of the custom field carrying the job's idempotency key.
JOB_KEY_FIELD = "oppsync job key"
#: Team the Engaging automation assigns.
ENGAGEMENT_TEAM = "Engagement Desk"
#: Seconds after the POST answer that the Engaging automation applies.
AUTOMATION_DELAY_S = 0.2

_MILESTONES = [
    ("Prospecting", 10, False),
    ("Engaging", 30, False),
    ("Won", 100, True),
    ("Lost", 0, True),
]
_API_USER_ID = 101
_FIRST_PERSON_ID = 102
_FIRST_TEAM_ID = 201
_PIPELINE_ID = 301
_FIRST_MILESTONE_ID = 401
_JOB_KEY_FIELD_ID = 501
_FIRST_PARTY_ID = 1001


def username_for(name: str) -> str:
    """Return the username for a full name, e.g. ``moses.frase``."""
    return ".".join(name.lower().split())


def build_dataset_seed(data_dir: Path, token: str = "demo-token") -> dict[str, Any]:
    """Build the demo seed from ``accounts.csv`` and ``sales_teams.csv``.

    Args:
        data_dir: Directory holding the data set's CSV files.
        token: Bearer token granted write access as the API user.

    Returns:
        A seed object in the format of :mod:`worker.simulator.seed`.
    """
    users, offices = _people(Path(data_dir) / "sales_teams.csv")
    teams = _teams(offices)
    milestones = _milestones()
    engaging_id = next(m["id"] for m in milestones if m["name"] == "Engaging")

    return {
        "users": users,
        "teams": teams,
        "parties": _parties(Path(data_dir) / "accounts.csv"),
        "pipelines": [{"id": _PIPELINE_ID, "name": "Sales", "milestones": milestones}],
        "fieldDefinitions": [
            {"id": _JOB_KEY_FIELD_ID, "name": JOB_KEY_FIELD, "type": "text"}
        ],
        "automations": [
            {
                "milestone": engaging_id,
                "assignTeam": teams[-1]["id"],
                "clearOwner": True,
                "timing": "delayed",
                "delay_s": AUTOMATION_DELAY_S,
            }
        ],
        "tokens": {token: {"user": _API_USER_ID, "scope": "write"}},
        "rateLimit": {"limit": 4000, "window_s": 3600},
    }


def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _people(path: Path) -> tuple[list[dict[str, Any]], dict[str, list[int]]]:
    users = [{"id": _API_USER_ID, "username": API_USERNAME, "name": "oppsync API"}]
    ids_by_name: dict[str, int] = {}
    offices: dict[str, list[int]] = {}
    for row in _read_rows(path):
        for name in (row["sales_agent"], row["manager"]):
            if name not in ids_by_name:
                ids_by_name[name] = _FIRST_PERSON_ID + len(ids_by_name)
                users.append(
                    {
                        "id": ids_by_name[name],
                        "username": username_for(name),
                        "name": name,
                    }
                )
            members = offices.setdefault(row["regional_office"], [])
            if ids_by_name[name] not in members:
                members.append(ids_by_name[name])

    return users, offices


def _teams(offices: dict[str, list[int]]) -> list[dict[str, Any]]:
    teams = [
        {"id": _FIRST_TEAM_ID + index, "name": office, "members": members}
        for index, (office, members) in enumerate(sorted(offices.items()))
    ]
    teams.append(
        {
            "id": _FIRST_TEAM_ID + len(teams),
            "name": ENGAGEMENT_TEAM,
            "members": [_API_USER_ID],
        }
    )

    return teams


def _milestones() -> list[dict[str, Any]]:
    return [
        {
            "id": _FIRST_MILESTONE_ID + index,
            "name": name,
            "probability": p,
            "complete": done,
        }
        for index, (name, p, done) in enumerate(_MILESTONES)
    ]


def _parties(path: Path) -> list[dict[str, Any]]:
    return [
        {"id": _FIRST_PARTY_ID + index, "type": "organisation", "name": row["account"]}
        for index, row in enumerate(_read_rows(path))
    ]
