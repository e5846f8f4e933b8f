"""Opportunity rules of the simulator, exercised in process over ASGI."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from worker.simulator import create_app, state_from_seed

SEED: dict[str, Any] = {
    "users": [
        {"id": 1, "username": "ann", "name": "Ann"},
        {"id": 2, "username": "bob", "name": "Bob"},
    ],
    "teams": [{"id": 10, "name": "East", "members": [1]}],
    "parties": [{"id": 100, "name": "Acme"}],
    "pipelines": [
        {
            "name": "Sales",
            "milestones": [
                {"id": 30, "name": "Open", "probability": 25},
                {"id": 31, "name": "Won", "probability": 100, "complete": True},
            ],
        }
    ],
    "fieldDefinitions": [
        {"id": 50, "name": "key", "type": "text"},
        {"id": 51, "name": "size", "type": "number"},
        {"id": 52, "name": "flag", "type": "boolean"},
    ],
    "tokens": {"t": {"user": 1}},
}


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """Run the async tests on asyncio only."""
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client of a fresh in-process simulator."""
    transport = httpx.ASGITransport(app=create_app(state_from_seed(SEED)))
    headers = {"Authorization": "Bearer t"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1", headers=headers
    ) as async_client:
        yield async_client


async def post(client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    """POST an opportunity with a valid base body changed by ``fields``."""
    body = {"name": "D", "party": {"id": 100}, "milestone": {"id": 30}, **fields}
    return await client.post("/api/v2/opportunities", json={"opportunity": body})


async def test_probability_defaults_to_the_milestone(client: httpx.AsyncClient) -> None:
    """Without a probability the milestone's own is used."""
    response = await post(client)

    assert response.json()["opportunity"]["probability"] == 25


async def test_created_on_a_won_milestone_is_closed(client: httpx.AsyncClient) -> None:
    """Creating at a complete milestone sets closedOn."""
    opp = (await post(client, milestone={"id": 31})).json()["opportunity"]

    assert opp["closedOn"] is not None
    assert opp["probability"] == 100


async def test_number_fields_read_back_as_strings(client: httpx.AsyncClient) -> None:
    """NUMBER custom field values are returned as strings, as Capsule does."""
    fields = [{"definition": 51, "value": 12}]
    opp_id = (await post(client, fields=fields)).json()["opportunity"]["id"]

    read = await client.get(
        f"/api/v2/opportunities/{opp_id}", params={"embed": "fields"}
    )

    assert read.json()["opportunity"]["fields"][0]["value"] == "12"


async def test_boolean_field_rejects_null(client: httpx.AsyncClient) -> None:
    """A BOOLEAN field set to null is refused with 'invalid type for field'."""
    response = await post(client, fields=[{"definition": 52, "value": None}])

    assert response.status_code == 422
    assert (
        response.json()["errors"][0]["message"] == "field.value: invalid type for field"
    )


async def test_put_replaces_a_field_value_and_reindexes(
    client: httpx.AsyncClient,
) -> None:
    """A changed field value is found by the new value and not by the old."""
    created = await post(client, fields=[{"definition": 50, "value": "old"}])
    opp_id = created.json()["opportunity"]["id"]
    change = {"opportunity": {"fields": [{"definition": {"id": 50}, "value": "new"}]}}
    await client.put(f"/api/v2/opportunities/{opp_id}", json=change)

    async def matches(value: str) -> list[int]:
        condition = {"field": "custom:50", "operator": "is", "value": value}
        body = {"filter": {"conditions": [condition]}}
        answer = await client.post("/api/v2/opportunities/filters/results", json=body)
        return [opp["id"] for opp in answer.json()["opportunities"]]

    assert await matches("new") == [opp_id]
    assert await matches("old") == []


async def test_too_many_ids_is_refused(client: httpx.AsyncClient) -> None:
    """A multi-id GET naming more than ten ids is a 400."""
    ids = ",".join(str(n) for n in range(11))

    response = await client.get(f"/api/v2/opportunities/{ids}")

    assert response.status_code == 400


async def test_unknown_api_path_is_404_with_rate_headers(
    client: httpx.AsyncClient,
) -> None:
    """An unknown path under /api/v2 is 404 and still reports the budget."""
    response = await client.get("/api/v2/nothing/here")

    assert response.status_code == 404
    assert response.headers["X-RateLimit-Remaining"] == "3999"


async def test_stats_count_by_route_template(client: httpx.AsyncClient) -> None:
    """Requests are counted under METHOD plus route template."""
    await post(client)
    await client.get("/api/v2/opportunities/5")

    stats = (await client.get("/_sim/stats")).json()

    assert stats["byRoute"] == {"POST /opportunities": 1, "GET /opportunities/{ids}": 1}
    assert stats["byStatus"] == {"201": 1, "404": 1}
