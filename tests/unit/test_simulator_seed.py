"""Seeds of the simulator: the demo data set and hand-written files."""

import json
from pathlib import Path

import pytest

from worker.simulator import build_dataset_seed, load_seed, state_from_seed
from worker.simulator.dataset import ENGAGEMENT_TEAM, JOB_KEY_FIELD, username_for
from worker.simulator.seed import SeedError

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Places the project keeps the CRM data set, newest layout first.
DATA_DIRS = [REPO_ROOT / "worker" / "data", REPO_ROOT / "examples" / "data"]


@pytest.fixture(scope="module")
def data_dir() -> Path:
    """The directory holding the CRM data set."""
    for candidate in DATA_DIRS:
        if (candidate / "sales_teams.csv").exists():
            return candidate

    pytest.skip("The CRM data set is not in the tree.")


def test_dataset_seed_counts(data_dir: Path) -> None:
    """85 parties, 35 salespeople plus 6 managers plus the API user, and 4 teams."""
    seed = build_dataset_seed(data_dir)

    assert len(seed["parties"]) == 85
    assert len(seed["users"]) == 35 + 6 + 1
    assert [team["name"] for team in seed["teams"]] == [
        "Central",
        "East",
        "West",
        ENGAGEMENT_TEAM,
    ]


def test_dataset_seed_teams_hold_their_office(data_dir: Path) -> None:
    """Each office team holds its sellers and managers; the desk only the API user."""
    state = state_from_seed(build_dataset_seed(data_dir))
    by_username = {user.username: user.id for user in state.users.values()}
    teams = {team.name: team.member_ids for team in state.teams.values()}

    assert by_username["moses.frase"] in teams["Central"]
    assert by_username["cara.losch"] in teams["East"]
    assert teams[ENGAGEMENT_TEAM] == {by_username["oppsync"]}
    assert len(teams["West"]) == 12 + 2


def test_dataset_seed_tenant_shape(data_dir: Path) -> None:
    """The token, pipeline, job-key field and delayed automation are in place."""
    state = state_from_seed(build_dataset_seed(data_dir, token="t"))
    stages = {m.name: (m.probability, m.complete) for m in state.milestones.values()}
    [rule] = state.automations

    assert state.users[state.tokens["t"].user_id].username == "oppsync"
    assert stages == {
        "Prospecting": (10, False),
        "Engaging": (30, False),
        "Won": (100, True),
        "Lost": (0, True),
    }
    assert [d.name for d in state.field_definitions.values()] == [JOB_KEY_FIELD]
    assert state.milestones[rule.milestone_id].name == "Engaging"
    assert (rule.timing, rule.clear_owner) == ("delayed", True)
    assert state.rate_limiter.limit == 4000


def test_username_is_lowercase_with_dots() -> None:
    """A full name becomes a dotted lower-case username."""
    assert username_for("Moses Frase") == "moses.frase"
    assert username_for("Mei-Mei Johns") == "mei-mei.johns"


def test_load_seed_assigns_missing_ids(tmp_path: Path) -> None:
    """Entities without an id get one from their kind's range."""
    seed = {
        "users": [
            {"id": 7, "username": "a", "name": "A"},
            {"username": "b", "name": "B"},
        ],
        "parties": [{"type": "person", "firstName": "Bo", "lastName": "Tan"}],
        "tokens": {"x": {"user": 7, "scope": "read"}},
        "rateLimit": {"limit": 30, "window_s": 10},
    }
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed))

    state = load_seed(path)

    assert sorted(state.users) == [7, 101]
    assert [p.name for p in state.parties.values()] == ["Bo Tan"]
    assert state.tokens["x"].scope == "read"
    assert (state.rate_limiter.limit, state.rate_limiter.window_s) == (30, 10.0)


def test_seed_with_dangling_reference_is_refused() -> None:
    """A team naming an unknown user makes the seed invalid."""
    seed = {"teams": [{"name": "T", "members": [5]}]}

    with pytest.raises(SeedError, match="unknown users"):
        state_from_seed(seed)
