"""Opportunity endpoints: create, read, list, search, filter, update, delete."""

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import render
from .changes import read_changes, unwrap_body
from .directory_routes import paged_response
from .errors import NotFound
from .filters import run_filter
from .guard import API_PREFIX, Handler, guarded
from .lifecycle import (
    create_opportunity,
    fire_create_automations,
    schedule_automations,
    update_opportunity,
)
from .model import Opportunity, TokenGrant
from .state import SimulatorState
from .wire import embeds, json_response, path_id, path_ids, read_json, since_param


def opportunity_routes(state: SimulatorState) -> list[Route]:
    """Return the opportunity routes bound to ``state``."""
    table: list[tuple[str, str, Handler, bool]] = [
        ("POST", "/opportunities", _create(state), True),
        ("GET", "/opportunities", _list(state), False),
        ("GET", "/opportunities/search", _search(state), False),
        ("POST", "/opportunities/filters/results", _filter(state), False),
        ("GET", "/opportunities/{ids}", _show(state), False),
        ("PUT", "/opportunities/{id}", _update(state), True),
        ("DELETE", "/opportunities/{id}", _delete(state), True),
        ("GET", "/parties/{id}/opportunities", _by_party(state), False),
    ]
    return [
        Route(API_PREFIX + path, guarded(state, path, handler, write), methods=[method])
        for method, path, handler, write in table
    ]


def _find(state: SimulatorState, opportunity_id: int) -> Opportunity:
    found = state.opportunities.get(opportunity_id)
    if found is None:
        raise NotFound()

    return found


def _create(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        changes = read_changes(state, unwrap_body(await read_json(request)))
        opp = create_opportunity(state, grant, changes)
        delayed = fire_create_automations(state, opp)

        with_fields = "fields" in embeds(request)
        body = {"opportunity": render.opportunity(state, opp, with_fields)}
        location = f"{request.base_url}api/v2/opportunities/{opp.id}"
        response = json_response(body, 201, {"Location": location})
        if delayed:
            # Delayed rules start counting once the answer has been sent.
            task = BackgroundTask(schedule_automations, state, opp.id, delayed)
            response.background = task
        return response

    return handler


def _list(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        since = since_param(request)
        opps = state.opportunities.all()
        if since is not None:
            opps = [opp for opp in opps if opp.updated_at > since]

        return _page_of(state, request, opps)

    return handler


def _search(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        needle = request.query_params.get("q", "").lower()
        opps = [opp for opp in state.opportunities.all() if _mentions(opp, needle)]
        return _page_of(state, request, opps)

    return handler


def _mentions(opp: Opportunity, needle: str) -> bool:
    if needle in opp.name.lower():
        return True

    return any(needle in str(item.value).lower() for item in opp.fields)


def _filter(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        opps = run_filter(state, await read_json(request))
        return _page_of(state, request, opps)

    return handler


def _show(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        ids = path_ids(request)
        with_fields = "fields" in embeds(request)
        found = [render.opportunity(state, _find(state, i), with_fields) for i in ids]
        if len(ids) == 1:
            return json_response({"opportunity": found[0]})

        return json_response({"opportunities": found})

    return handler


def _update(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        opp = _find(state, path_id(request))
        changes = read_changes(state, unwrap_body(await read_json(request)))
        update_opportunity(state, opp, changes)

        body = render.opportunity(state, opp, "fields" in embeds(request))
        return json_response({"opportunity": body})

    return handler


def _delete(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        if state.opportunities.remove(path_id(request)) is None:
            raise NotFound()

        return Response(status_code=204)

    return handler


def _by_party(state: SimulatorState) -> Handler:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        party_id = path_id(request)
        if party_id not in state.parties:
            raise NotFound()

        ids = state.opportunities.ids_for_party(party_id)
        opps = [opp for opp in map(state.opportunities.get, ids) if opp is not None]
        return _page_of(state, request, opps)

    return handler


def _page_of(
    state: SimulatorState, request: Request, opps: list[Opportunity]
) -> Response:
    with_fields = "fields" in embeds(request)

    def render_one(opp: Opportunity) -> dict[str, object]:
        return render.opportunity(state, opp, with_fields)

    return paged_response(request, "opportunities", opps, render_one)
