"""Read-only directory endpoints: users, teams, pipelines, milestones,
parties and opportunity field definitions (reference §4)."""

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import render
from .errors import NotFound
from .guard import API_PREFIX, Handler, guarded
from .model import TokenGrant
from .paging import PageRequest, page_headers
from .state import SimulatorState
from .wire import embeds, json_response, path_id, path_ids

Item = TypeVar("Item")


def paged_response(
    request: Request,
    key: str,
    items: Sequence[Item],
    render_item: Callable[[Item], Any] = lambda item: item,
) -> Response:
    """Answer one page of ``items`` under ``key`` with paging headers.

    Only the items on the page are rendered, so a long list costs one
    slice, not one rendering per stored record.
    """
    page = PageRequest.from_request(request)
    chunk, has_more = page.cut(items)
    headers = page_headers(request, page, has_more)

    body = {key: [render_item(item) for item in chunk]}

    return json_response(body, headers=headers)


def _lookup(table: dict[int, Any], entity_id: int) -> Any:
    found = table.get(entity_id)
    if found is None:
        raise NotFound()

    return found


def directory_routes(state: SimulatorState) -> list[Route]:
    """Return the directory routes bound to ``state``."""
    handlers: list[tuple[str, Handler]] = [
        ("/users", _users(state)),
        ("/users/current", _current_user(state)),
        ("/users/{id}", _user(state)),
        ("/teams", _teams(state)),
        ("/teams/{id}", _team(state)),
        ("/pipelines", _pipelines(state)),
        ("/pipelines/{ids}", _pipeline(state)),
        ("/pipelines/{id}/milestones", _pipeline_milestones(state)),
        ("/milestones", _milestones(state)),
        ("/milestones/{id}", _milestone(state)),
        ("/parties", _parties(state)),
        ("/parties/search", _party_search(state)),
        ("/parties/{ids}", _party(state)),
        ("/opportunities/fields/definitions", _definitions(state)),
    ]
    return [
        Route(API_PREFIX + path, guarded(state, path, handler), methods=["GET"])
        for path, handler in handlers
    ]


def _users(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        users = [render.user(user) for user in state.users.values()]
        return json_response({"users": users})

    return handler


def _current_user(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        return json_response({"user": render.user(_lookup(state.users, grant.user_id))})

    return handler


def _user(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        found = _lookup(state.users, path_id(request))
        return json_response({"user": render.user(found)})

    return handler


def _teams(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        members = "memberships" in embeds(request)
        teams = [render.team(state, team, members) for team in state.teams.values()]
        return json_response({"teams": teams})

    return handler


def _team(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        found = _lookup(state.teams, path_id(request))
        members = "memberships" in embeds(request)
        return json_response({"team": render.team(state, found, members)})

    return handler


def _pipelines(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        items = list(state.pipelines.values())
        return paged_response(request, "pipelines", items, render.pipeline)

    return handler


def _pipeline(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        ids = path_ids(request)
        found = [render.pipeline(_lookup(state.pipelines, i)) for i in ids]
        if len(ids) == 1:
            return json_response({"pipeline": found[0]})

        return json_response({"pipelines": found})

    return handler


def _milestones_of(state: SimulatorState, pipeline_id: int) -> list[dict[str, Any]]:
    return [
        render.milestone(state, milestone)
        for milestone in state.milestones.values()
        if milestone.pipeline_id == pipeline_id
    ]


def _pipeline_milestones(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        pipeline = _lookup(state.pipelines, path_id(request))
        return json_response({"milestones": _milestones_of(state, pipeline.id)})

    return handler


def _milestones(state: SimulatorState) -> Handler:
    # GET /milestones lists only the oldest pipeline, kept by Capsule for
    # backward compatibility (reference §4).
    async def handler(request: Request, grant: TokenGrant) -> Response:
        if not state.pipelines:
            return json_response({"milestones": []})

        oldest = min(state.pipelines.values(), key=lambda p: (p.created_at, p.id))
        return json_response({"milestones": _milestones_of(state, oldest.id)})

    return handler


def _milestone(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        found = _lookup(state.milestones, path_id(request))
        return json_response({"milestone": render.milestone(state, found)})

    return handler


def _parties(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        items = list(state.parties.values())
        return paged_response(request, "parties", items, render.party)

    return handler


def _party_search(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        needle = request.query_params.get("q", "").lower()
        items = [p for p in state.parties.values() if needle in p.name.lower()]
        return paged_response(request, "parties", items, render.party)

    return handler


def _party(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        ids = path_ids(request)
        found = [render.party(_lookup(state.parties, i)) for i in ids]
        if len(ids) == 1:
            return json_response({"party": found[0]})

        return json_response({"parties": found})

    return handler


def _definitions(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        items = [
            render.field_definition(definition, order)
            for order, definition in enumerate(state.field_definitions.values(), 1)
        ]
        return paged_response(request, "definitions", items)

    return handler
