"""The Capsule simulator served by a real process and spoken to over HTTP."""

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
WRITE_TOKEN = "tok-write"
READ_TOKEN = "tok-read"
ANN, BOB, CAT = 1, 2, 3
EAST, WEST, DESK = 10, 11, 12
ACME, BETA = 100, 101
PROSPECTING, ENGAGING, QUALIFIED, WON = 30, 31, 32, 33
JOB_KEY = 50

SEED: dict[str, Any] = {
    "users": [
        {"id": ANN, "username": "ann", "name": "Ann Lee"},
        {"id": BOB, "username": "bob", "name": "Bob Ray"},
        {"id": CAT, "username": "cat", "name": "Cat Fox"},
    ],
    "teams": [
        {"id": EAST, "name": "East", "members": [ANN, BOB]},
        {"id": WEST, "name": "West", "members": [CAT]},
        {"id": DESK, "name": "Desk", "members": [ANN]},
    ],
    "parties": [
        {"id": ACME, "type": "organisation", "name": "Acme Corporation"},
        {"id": BETA, "type": "organisation", "name": "Betatech"},
    ],
    "pipelines": [
        {
            "id": 20,
            "name": "Sales",
            "milestones": [
                {"id": PROSPECTING, "name": "Prospecting", "probability": 10},
                {"id": ENGAGING, "name": "Engaging", "probability": 30},
                {"id": QUALIFIED, "name": "Qualified", "probability": 50},
                {"id": WON, "name": "Won", "probability": 100, "complete": True},
            ],
        },
        {
            "id": 21,
            "name": "Renewals",
            "milestones": [{"id": 40, "name": "Due", "probability": 20}],
        },
    ],
    "fieldDefinitions": [{"id": JOB_KEY, "name": "job key", "type": "text"}],
    "automations": [
        {"milestone": ENGAGING, "assignTeam": DESK, "clearOwner": True},
        {
            "milestone": QUALIFIED,
            "assignTeam": DESK,
            "clearOwner": True,
            "timing": "delayed",
            "delay_s": 0.3,
        },
    ],
    "tokens": {
        WRITE_TOKEN: {"user": ANN, "scope": "write"},
        READ_TOKEN: {"user": BOB, "scope": "read"},
    },
}
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def wait_for(condition: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    """Poll ``condition`` until it returns something truthy or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.02)

    raise AssertionError(f"Condition not met within {timeout_s} s.")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the simulator process on a free loopback port."""
    workdir = tmp_path_factory.mktemp("simulator")
    seed_path, port_file = workdir / "seed.json", workdir / "port"
    seed_path.write_text(json.dumps(SEED), encoding="utf-8")
    command = [sys.executable, "-m", "worker.simulator", "--seed", str(seed_path)]
    command += ["--port", "0", "--port-file", str(port_file)]
    with (workdir / "log").open("w") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=log)
    try:
        wait_for(lambda: port_file.exists() or process.poll() is not None)
        assert process.poll() is None, (workdir / "log").read_text()
        yield f"http://127.0.0.1:{int(port_file.read_text())}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def admin(base_url: str) -> Iterator[httpx.Client]:
    """A client for the /_sim control endpoints, on a freshly reset tenant."""
    with httpx.Client(base_url=f"{base_url}/_sim", timeout=10) as client:
        client.post("/reset").raise_for_status()
        client.put("/ratelimit", json={"limit": 4000, "window_s": 3600})
        client.put("/automations", json={"automations": SEED["automations"]})
        client.put("/tokens", json={"tokens": SEED["tokens"]})
        yield client


@pytest.fixture
def api(base_url: str, admin: httpx.Client) -> Iterator[httpx.Client]:
    """A client of the simulated API carrying the write token."""
    headers = {"Authorization": f"Bearer {WRITE_TOKEN}"}
    with httpx.Client(base_url=f"{base_url}/api/v2", headers=headers, timeout=10) as c:
        yield c


def new_opportunity(**overrides: Any) -> dict[str, Any]:
    """Return a valid create body, changed by ``overrides``."""
    opportunity = {
        "name": "Deal",
        "party": {"id": ACME},
        "milestone": {"id": PROSPECTING},
    }
    return {"opportunity": {**opportunity, **overrides}}


def create(api: httpx.Client, **overrides: Any) -> dict[str, Any]:
    """Create an opportunity and return it as the POST answered."""
    response = api.post("/opportunities", json=new_opportunity(**overrides))
    assert response.status_code == 201, response.text
    return dict(response.json()["opportunity"])


def error_messages(response: httpx.Response) -> list[str]:
    """Return the messages of a 422 answer's ``errors`` list."""
    assert response.status_code == 422, response.text
    return [error["message"] for error in response.json()["errors"]]


def stored(admin: httpx.Client) -> list[dict[str, Any]]:
    """Return every stored opportunity, fields embedded."""
    return list(admin.get("/opportunities").json()["opportunities"])


# Authentication


def test_missing_token_is_401_with_challenge(
    base_url: str, admin: httpx.Client
) -> None:
    """A request without a token gets 401, a message and a Bearer challenge."""
    response = httpx.get(f"{base_url}/api/v2/users/current")

    assert response.status_code == 401
    assert "message" in response.json()
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_unknown_token_is_401(base_url: str, admin: httpx.Client) -> None:
    """A token the tenant does not know is refused with 401."""
    headers = {"Authorization": "Bearer nope"}
    response = httpx.get(f"{base_url}/api/v2/users/current", headers=headers)

    assert response.status_code == 401


def test_read_scope_cannot_write(base_url: str, admin: httpx.Client) -> None:
    """A read-only token may read but gets 403 on a write."""
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    url = f"{base_url}/api/v2/opportunities"

    assert httpx.get(url, headers=headers).status_code == 200
    response = httpx.post(url, headers=headers, json=new_opportunity())
    assert response.status_code == 403
    assert response.json() == {"message": "Requires additional scope"}
    assert all(name in response.headers for name in RATE_HEADERS)


def test_revoked_token_is_refused(api: httpx.Client, admin: httpx.Client) -> None:
    """Replacing the token map at run time revokes the old tokens at once."""
    assert api.get("/users/current").json()["user"]["id"] == ANN

    admin.put("/tokens", json={"tokens": {"other": {"user": CAT}}})

    assert api.get("/users/current").status_code == 401


# Rate limit


def test_every_authenticated_answer_has_rate_headers(api: httpx.Client) -> None:
    """2xx, 400, 404 and 422 answers all carry the three rate-limit headers."""
    answers = [
        api.get("/users/current"),
        api.get("/opportunities/999"),
        api.post("/opportunities", content=b"{oops"),
        api.post("/opportunities", json=new_opportunity(name=" ")),
    ]

    assert [r.status_code for r in answers] == [200, 404, 400, 422]
    for response in answers:
        assert all(name in response.headers for name in RATE_HEADERS)
    remaining = [int(r.headers["X-RateLimit-Remaining"]) for r in answers]
    assert remaining == [3999, 3998, 3997, 3996]


def test_over_limit_is_429_without_retry_after(
    api: httpx.Client, admin: httpx.Client
) -> None:
    """Past the limit the answer is 429, Remaining 0, and no Retry-After."""
    admin.put("/ratelimit", json={"limit": 3, "window_s": 60})
    statuses = [api.get("/users/current").status_code for _ in range(5)]
    response = api.get("/users/current")

    assert statuses == [200, 200, 200, 429, 429]
    assert response.json() == {"error": "rate limit reached"}
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in response.headers
    assert int(response.headers["X-RateLimit-Reset"]) >= time.time()
    windows = admin.get("/stats").json()["rateWindows"][str(ANN)]
    assert windows == [
        {"windowStart": windows[0]["windowStart"], "accepted": 3, "rejected": 3}
    ]


def test_budget_returns_after_the_reset_time(
    api: httpx.Client, admin: httpx.Client
) -> None:
    """Once X-RateLimit-Reset has passed, a fresh window admits requests again."""
    admin.put("/ratelimit", json={"limit": 2, "window_s": 1})
    answers = [api.get("/users/current") for _ in range(3)]
    reset_at_epoch_s = int(answers[-1].headers["X-RateLimit-Reset"])

    assert answers[-1].status_code == 429
    wait_for(lambda: time.time() >= reset_at_epoch_s, timeout_s=5)
    response = api.get("/users/current")
    assert response.status_code == 200
    assert admin.get("/stats").json()["maxAcceptedPerWindow"] == 2


# Create, read, update


def test_create_without_owner_or_team_is_owned_by_token_user(api: httpx.Client) -> None:
    """With neither owner nor team the token's user owns the new record."""
    opp = create(api)

    assert opp["owner"]["id"] == ANN
    assert opp["team"] is None
    assert opp["probability"] == 10
    assert opp["durationBasis"] == "FIXED"
    assert "fields" not in opp


def test_create_with_team_only_is_team_owned(api: httpx.Client) -> None:
    """With a team but no owner, the record has no owner."""
    opp = create(api, team={"id": WEST})

    assert opp["owner"] is None
    assert opp["team"] == {"id": WEST, "name": "West"}


def test_create_rejects_owner_outside_team(
    api: httpx.Client, admin: httpx.Client
) -> None:
    """An owner who is not a member of the team makes the create fail with 422."""
    body = new_opportunity(owner={"id": CAT}, team={"id": EAST})
    response = api.post("/opportunities", json=body)

    assert response.json() == {
        "message": "Validation Failed",
        "errors": [
            {
                "message": "owner is not a member of the team",
                "resource": "opportunity",
                "field": "owner",
            }
        ],
    }
    assert stored(admin) == []


def test_create_lists_every_invalid_field(api: httpx.Client) -> None:
    """A body with several problems gets one 422 entry per field."""
    body = {
        "opportunity": {
            "name": "",
            "party": {"id": 9999},
            "milestone": {"id": PROSPECTING},
            "value": {"amount": 10, "currency": "usd"},
            "probability": 101,
            "expectedCloseOn": "2024-02-30",
            "fields": [{"definition": 9999, "value": "x"}],
        }
    }
    response = api.post("/opportunities", json=body)

    fields = sorted(error["field"] for error in response.json()["errors"])
    assert response.status_code == 422
    assert fields == [
        "expectedCloseOn",
        "fields",
        "name",
        "party",
        "probability",
        "value",
    ]


def test_create_requires_party_and_milestone(api: httpx.Client) -> None:
    """Leaving out party and milestone is a 422 naming both."""
    response = api.post("/opportunities", json={"opportunity": {"name": "x"}})

    assert error_messages(response) == ["party is required", "milestone is required"]


def test_amount_without_currency_is_rejected(api: httpx.Client) -> None:
    """A value amount without a currency is refused."""
    response = api.post("/opportunities", json=new_opportunity(value={"amount": 5}))

    assert error_messages(response) == [
        "value.currency is required when value.amount is set"
    ]


def test_create_accepts_both_field_definition_shapes(api: httpx.Client) -> None:
    """Fields may name their definition as a bare id or as {id}."""
    bare = create(api, fields=[{"definition": JOB_KEY, "value": "a"}])
    wrapped = create(api, fields=[{"definition": {"id": JOB_KEY}, "value": "b"}])

    response = api.get(f"/opportunities/{bare['id']},{wrapped['id']}?embed=fields")
    values = [opp["fields"][0]["value"] for opp in response.json()["opportunities"]]
    assert values == ["a", "b"]


def test_put_owner_alone_clears_team(api: httpx.Client) -> None:
    """Sending owner without team clears the team."""
    opp = create(api, owner={"id": ANN}, team={"id": EAST})

    response = api.put(
        f"/opportunities/{opp['id']}", json={"opportunity": {"owner": {"id": BOB}}}
    )

    assert response.json()["opportunity"]["owner"]["id"] == BOB
    assert response.json()["opportunity"]["team"] is None


def test_put_team_alone_keeps_owner_and_checks_membership(api: httpx.Client) -> None:
    """Sending team alone keeps the owner, and fails when the owner is not a member."""
    opp = create(api, owner={"id": ANN})
    url = f"/opportunities/{opp['id']}"

    kept = api.put(url, json={"opportunity": {"team": {"id": DESK}}}).json()[
        "opportunity"
    ]
    refused = api.put(url, json={"opportunity": {"team": {"id": WEST}}})

    assert (kept["owner"]["id"], kept["team"]["id"]) == (ANN, DESK)
    assert error_messages(refused) == ["owner is not a member of the team"]
    assert api.get(url).json()["opportunity"]["team"]["id"] == DESK


def test_put_owner_and_team_sets_both(api: httpx.Client) -> None:
    """Sending owner and team together sets both."""
    opp = create(api, team={"id": WEST})
    body = {"opportunity": {"owner": {"id": BOB}, "team": {"id": EAST}}}

    changed = api.put(f"/opportunities/{opp['id']}", json=body).json()["opportunity"]

    assert (changed["owner"]["id"], changed["team"]["id"]) == (BOB, EAST)


def test_put_null_owner_with_team_is_team_owned(api: httpx.Client) -> None:
    """owner null plus a team makes the record team-owned without a membership check."""
    opp = create(api, owner={"id": ANN})
    body = {"opportunity": {"owner": None, "team": {"id": WEST}}}

    changed = api.put(f"/opportunities/{opp['id']}", json=body).json()["opportunity"]

    assert changed["owner"] is None
    assert changed["team"]["id"] == WEST


def test_put_changes_only_sent_fields(api: httpx.Client) -> None:
    """A PUT leaves every key it did not carry as it was."""
    opp = create(api, description="keep me", expectedCloseOn="2030-01-31")

    changed = api.put(
        f"/opportunities/{opp['id']}", json={"opportunity": {"name": "Renamed"}}
    ).json()["opportunity"]

    assert changed["name"] == "Renamed"
    assert changed["description"] == "keep me"
    assert changed["expectedCloseOn"] == "2030-01-31"
    assert changed["owner"] == opp["owner"]


def test_put_null_party_is_refused(api: httpx.Client) -> None:
    """party null is refused with 'party is required'."""
    opp = create(api)

    response = api.put(
        f"/opportunities/{opp['id']}", json={"opportunity": {"party": None}}
    )

    assert error_messages(response) == ["party is required"]


def test_closing_milestone_sets_closed_on_and_locks_probability(
    api: httpx.Client,
) -> None:
    """Moving to a complete milestone sets closedOn; probability with it is refused."""
    opp = create(api)
    url = f"/opportunities/{opp['id']}"

    refused = api.put(
        url, json={"opportunity": {"milestone": {"id": WON}, "probability": 90}}
    )
    closed = api.put(url, json={"opportunity": {"milestone": {"id": WON}}}).json()[
        "opportunity"
    ]

    assert error_messages(refused) == [
        "probability can be updated only for open opportunity"
    ]
    assert closed["closedOn"] == time.strftime("%Y-%m-%d", time.gmtime())
    assert closed["probability"] == 100
    assert closed["lastOpenMilestone"]["id"] == PROSPECTING


def test_delete_answers_204_then_404(api: httpx.Client) -> None:
    """A deleted opportunity is gone: 204 first, 404 afterwards."""
    opp = create(api)

    assert api.delete(f"/opportunities/{opp['id']}").status_code == 204
    response = api.get(f"/opportunities/{opp['id']}")
    assert response.status_code == 404
    assert response.json() == {"message": "Could not find resource"}


def test_malformed_json_is_400(api: httpx.Client) -> None:
    """A body that is not JSON is answered 400 with a message."""
    response = api.post("/opportunities", content=b'{"opportunity": ')

    assert response.status_code == 400
    assert "message" in response.json()


def test_amounts_round_trip_exactly(api: httpx.Client) -> None:
    """Amounts come back with exactly the digits that were sent."""
    value = {"amount": "AMOUNT", "currency": "USD"}
    template = json.dumps(new_opportunity(value=value))
    for amount in ("1054.10", "0.1", "12345678901234567890.123456789", "7"):
        body = template.replace('"AMOUNT"', amount)
        created = api.post("/opportunities", content=body.encode())
        opp_id = created.json()["opportunity"]["id"]
        read_back = api.get(f"/opportunities/{opp_id}").text

        assert f'"amount":{amount},' in created.text
        assert f'"amount":{amount},' in read_back


# Automations


def test_sync_automation_shows_in_the_post_answer(api: httpx.Client) -> None:
    """A sync rule has already cleared the owner when the POST answers."""
    opp = create(api, milestone={"id": ENGAGING}, owner={"id": ANN})

    assert opp["owner"] is None
    assert opp["team"]["id"] == DESK


def test_delayed_automation_applies_after_the_answer(api: httpx.Client) -> None:
    """A delayed rule changes the record only after the POST answered."""
    opp = create(api, milestone={"id": QUALIFIED}, owner={"id": BOB}, team={"id": EAST})
    url = f"/opportunities/{opp['id']}"

    assert opp["owner"]["id"] == BOB
    after = wait_for(
        lambda: (o := api.get(url).json()["opportunity"])["owner"] is None and o
    )
    assert after["team"]["id"] == DESK


def test_put_does_not_fire_automations(api: httpx.Client) -> None:
    """Moving an opportunity into an automated milestone with a PUT fires nothing."""
    opp = create(api, owner={"id": ANN})
    body = {"opportunity": {"milestone": {"id": ENGAGING}}}

    moved = api.put(f"/opportunities/{opp['id']}", json=body).json()["opportunity"]

    assert moved["owner"]["id"] == ANN
    assert moved["milestone"]["id"] == ENGAGING


def test_automations_can_be_replaced(api: httpx.Client, admin: httpx.Client) -> None:
    """An empty automation list stops the rule from firing."""
    admin.put("/automations", json={"automations": []})

    opp = create(api, milestone={"id": ENGAGING})

    assert opp["owner"]["id"] == ANN


# Faults


def set_faults(admin: httpx.Client, *faults: dict[str, Any]) -> None:
    """Replace the fault list."""
    admin.put("/faults", json={"faults": list(faults), "seed": 7}).raise_for_status()


def test_error_fault_does_no_work(api: httpx.Client, admin: httpx.Client) -> None:
    """An error fault answers its status without creating anything."""
    set_faults(admin, {"kind": "error", "method": "POST", "path": "/opportunities"})

    response = api.post("/opportunities", json=new_opportunity())

    assert response.status_code == 503
    assert "message" in response.json()
    assert all(name in response.headers for name in RATE_HEADERS)
    assert stored(admin) == []
    assert admin.get("/stats").json()["faultsFired"]["error"] == 1


def test_fault_count_and_prefix_path(api: httpx.Client, admin: httpx.Client) -> None:
    """A fault with count 2 on a path prefix fires twice, then stops."""
    fault = {"kind": "error", "path": "/users*", "count": 2, "status": 500}
    set_faults(admin, fault)

    statuses = [api.get("/users/current").status_code for _ in range(3)]

    assert statuses == [500, 500, 200]
    assert api.get("/teams").status_code == 200


def test_latency_fault_delays_then_works(
    api: httpx.Client, admin: httpx.Client
) -> None:
    """A latency fault holds the answer for delay_s and then does the work."""
    set_faults(admin, {"kind": "latency", "method": "POST", "delay_s": 0.4})

    started = time.monotonic()
    response = api.post("/opportunities", json=new_opportunity())

    assert response.status_code == 201
    assert time.monotonic() - started >= 0.4
    assert len(stored(admin)) == 1


def test_commit_late_commits_exactly_once(
    api: httpx.Client, admin: httpx.Client
) -> None:
    """commit_late stores the record although the client times out first."""
    set_faults(admin, {"kind": "commit_late", "method": "POST", "delay_s": 1.5})

    with pytest.raises(httpx.ReadTimeout):
        api.post("/opportunities", json=new_opportunity(name="late"), timeout=0.3)

    opps = wait_for(lambda: stored(admin))
    assert [opp["name"] for opp in opps] == ["late"]
    assert admin.get("/stats").json()["faultsFired"]["commit_late"] == 1


def test_commit_502_commits_exactly_once(
    api: httpx.Client, admin: httpx.Client
) -> None:
    """commit_502 stores the record but answers 502 Bad Gateway."""
    set_faults(
        admin, {"kind": "commit_502", "method": "POST", "path": "/opportunities"}
    )

    response = api.post("/opportunities", json=new_opportunity(name="hidden"))

    assert response.status_code == 502
    assert response.json() == {"message": "Bad Gateway"}
    assert [opp["name"] for opp in stored(admin)] == ["hidden"]


def test_faults_can_be_cleared(api: httpx.Client, admin: httpx.Client) -> None:
    """DELETE /_sim/faults removes every rule."""
    set_faults(admin, {"kind": "error"})
    admin.delete("/faults")

    assert api.get("/users/current").status_code == 200
    assert admin.get("/faults").json() == {"faults": []}


# Queries


def test_filter_on_custom_field_finds_the_record(api: httpx.Client) -> None:
    """A custom field 'is' filter returns exactly the record with that value."""
    create(api, fields=[{"definition": JOB_KEY, "value": "job-1"}])
    wanted = create(api, fields=[{"definition": JOB_KEY, "value": "job-2"}])
    conditions = [{"field": f"custom:{JOB_KEY}", "operator": "is", "value": "job-2"}]

    response = api.post(
        "/opportunities/filters/results", json={"filter": {"conditions": conditions}}
    )

    assert [opp["id"] for opp in response.json()["opportunities"]] == [wanted["id"]]


def test_filter_combines_owner_and_name(api: httpx.Client) -> None:
    """Conditions on owner and name must all hold."""
    create(api, name="Alpha deal", owner={"id": ANN})
    wanted = create(api, name="Alpha renewal", owner={"id": BOB})
    conditions = [
        {"field": "owner", "operator": "is", "value": BOB},
        {"field": "name", "operator": "contains", "value": "alpha"},
    ]

    response = api.post(
        "/opportunities/filters/results", json={"filter": {"conditions": conditions}}
    )

    assert [opp["id"] for opp in response.json()["opportunities"]] == [wanted["id"]]


def test_filter_rejects_unknown_field(api: httpx.Client) -> None:
    """An unknown filter field is a 422 'invalid field name'."""
    conditions = [{"field": "colour", "operator": "is", "value": "red"}]

    response = api.post(
        "/opportunities/filters/results", json={"filter": {"conditions": conditions}}
    )

    assert error_messages(response) == ["invalid field name"]


def test_list_pages_with_link_header(api: httpx.Client) -> None:
    """A list longer than perPage links to the next page until the last one."""
    ids = [create(api, name=f"Deal {n}")["id"] for n in range(3)]

    first = api.get("/opportunities", params={"perPage": 2})
    next_url = first.headers["Link"].split(">")[0].lstrip("<")
    second = api.get(next_url)

    assert first.headers["X-Pagination-Has-More"] == "true"
    assert 'rel="next"' in first.headers["Link"]
    assert second.headers["X-Pagination-Has-More"] == "false"
    assert 'rel="next"' not in second.headers.get("Link", "")
    pages = first.json()["opportunities"] + second.json()["opportunities"]
    assert [opp["id"] for opp in pages] == ids


def test_party_lookups(api: httpx.Client, admin: httpx.Client) -> None:
    """Parties are found by case-insensitive search, including ones added later."""
    admin.post("/parties", json={"party": {"type": "organisation", "name": "Zeta Ltd"}})

    found = api.get("/parties/search", params={"q": "ZETA"}).json()["parties"]
    opp = create(api, party={"id": BETA})
    listed = api.get(f"/parties/{BETA}/opportunities").json()["opportunities"]

    assert [party["name"] for party in found] == ["Zeta Ltd"]
    assert [item["id"] for item in listed] == [opp["id"]]


def test_directory_endpoints(api: httpx.Client) -> None:
    """Teams embed memberships, and /milestones lists the oldest pipeline only."""
    team = api.get(f"/teams/{EAST}", params={"embed": "memberships"}).json()["team"]
    milestones = api.get("/milestones").json()["milestones"]
    renewals = api.get("/pipelines/21/milestones").json()["milestones"]

    assert [m["user"]["username"] for m in team["memberships"]] == ["ann", "bob"]
    assert [m["name"] for m in milestones] == [
        "Prospecting",
        "Engaging",
        "Qualified",
        "Won",
    ]
    assert [m["name"] for m in renewals] == ["Due"]
    assert api.get("/users/999").status_code == 404
