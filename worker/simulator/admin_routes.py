"""Control endpoints under ``/_sim/`` for tests and demos.

They need no token: the server binds loopback by default and these are
not part of Capsule's API. They are not counted in the request stats.

- ``GET|PUT|DELETE /_sim/faults``: show, replace or clear fault rules;
- ``GET /_sim/stats``: counters, fault fires and rate-limit windows;
- ``GET|PUT /_sim/ratelimit``: show or set ``{"limit", "window_s"}``;
- ``GET|PUT /_sim/automations``: show or replace automation rules;
- ``PUT /_sim/tokens``: replace the token map (e.g. to revoke a token);
- ``POST /_sim/reset``: delete opportunities, zero counters, clear faults;
- ``GET /_sim/opportunities``: every opportunity with its fields;
- ``POST /_sim/parties`` and ``POST /_sim/users``: add entities.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import render
from .errors import ApiError, BadRequest
from .faults import parse_fault
from .seed import SeedError, add_party, parse_automation, parse_tokens
from .state import SimulatorState
from .wire import json_response, read_json

AdminHandler = Callable[[Request], Awaitable[Any]]


def admin_routes(state: SimulatorState) -> list[Route]:
    """Return the ``/_sim/`` routes bound to ``state``."""
    table: list[tuple[str, str, AdminHandler]] = [
        ("GET", "/faults", _show_faults(state)),
        ("PUT", "/faults", _replace_faults(state)),
        ("DELETE", "/faults", _clear_faults(state)),
        ("GET", "/stats", _stats(state)),
        ("GET", "/ratelimit", _show_rate_limit(state)),
        ("PUT", "/ratelimit", _set_rate_limit(state)),
        ("GET", "/automations", _show_automations(state)),
        ("PUT", "/automations", _replace_automations(state)),
        ("PUT", "/tokens", _replace_tokens(state)),
        ("POST", "/reset", _reset(state)),
        ("GET", "/opportunities", _all_opportunities(state)),
        ("POST", "/parties", _add_party(state)),
        ("POST", "/users", _add_user(state)),
    ]
    return [
        Route("/_sim" + path, _json_endpoint(handler), methods=[method])
        for method, path, handler in table
    ]


def _json_endpoint(handler: AdminHandler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            body = await handler(request)
        except ApiError as exc:
            return json_response(exc.body(), exc.status_code)
        except (KeyError, TypeError, ValueError) as exc:
            return json_response({"message": f"Invalid admin request: {exc!r}."}, 400)

        return json_response(body)

    return endpoint


async def _object_body(request: Request, key: str) -> Any:
    body = await read_json(request)
    if not isinstance(body, dict) or key not in body:
        raise BadRequest(f"Expected a JSON object with {key!r}.")

    return body[key]


def _show_faults(state: SimulatorState) -> AdminHandler:
    async def handler(request: Request) -> Any:
        return {"faults": [rule.as_json() for rule in state.faults.rules]}

    return handler


def _replace_faults(state: SimulatorState) -> AdminHandler:
    async def handler(request: Request) -> Any:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("faults"), list):
            raise BadRequest('Expected {"faults": [...]}.')
        rules = [parse_fault(raw) for raw in body["faults"]]
        state.faults.replace(rules, body.get("seed"))

        return {"faults": [rule.as_json() for rule in rules]}

    return handler


def _clear_faults(state: SimulatorState) -> AdminHandler:
    async def handler(request: Request) -> Any:
        state.faults.clear()
        return {"faults": []}

    return handler


def _stats(state: SimulatorState) -> AdminHandler:
    async def handler(request: Request) -> Any:
        stats, limiter = state.stats, state.rate_limiter
        return {
            "requests": stats.total,
            "byRoute": dict(stats.by_route),
            "byStatus": {str(code): n for code, n in sorted(stats.by_status.items())},
            "rateLimited": stats.by_status[429],
            "opportunities": len(state.opportunities),
            "faultsFired": dict(state.faults.fired_by_kind),
            "automationFires": stats.automation_fires,
            "rateLimit": _rate_limit_json(state),
            "maxAcceptedPerWindow": limiter.max_accepted(),
            "rateWindows": limiter.windows(),
        }

    return handler


def _rate_limit_json(state: SimulatorState) -> dict[str, Any]:
    limiter = state.rate_limiter
    return {"limit": limiter.limit, "window_s": limiter.window_s}


def _show_rate_limit(state: SimulatorState) -> AdminHandler:
    async def handler(request: Request) -> Any:
        return _rate_limit_json(state)

    return handler


def _set_rate_limit(state: SimulatorState) -> AdminHandler:
    async def handler(request: Request) -> Any:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise BadRequest('Expected {"limit": N, "window_s": S}.')
        limiter = state.rate_limiter
        limit = int(body.get("limit", limiter.limit))
        limiter.configure(limit, float(body.get("window_s", limiter.window_s)))

        return _rate_limit_json(state)

    return handler


def _automation_json(state: SimulatorState) -> dict[str, Any]:
    rules = [
        {
            "milestone": rule.milestone_id,
            "assignTeam": rule.assign_team_id,
            "clearOwner": rule.clear_owner,
            "timing": rule.timing,
            "delay_s": rule.delay_s,
        }
        for rule in state.automations
    ]
    return {"automations": rules}


def _show_automations(state: SimulatorState) -> AdminHandler:
    async def handler(request: Request) -> Any:
        return _automation_json(state)

    return handler


def _replace_automations(state: SimulatorState) -> AdminHandler:
    async def handler(request: Request) -> Any:
        raw = await _object_body(request, "automations")
        state.automations = [parse_automation(state, item) for item in raw]
        return _automation_json(state)

    return handler


def _replace_tokens(state: SimulatorState) -> AdminHandler:
    async def handler(request: Request) -> Any:
        state.tokens = parse_tokens(state, await _object_body(request, "tokens"))
        return {"tokens": len(state.tokens)}

    return handler


def _reset(state: SimulatorState) -> AdminHandler:
    async def handler(request: Request) -> Any:
        state.reset()
        return {"reset": True}

    return handler


def _all_opportunities(state: SimulatorState) -> AdminHandler:
    async def handler(request: Request) -> Any:
        opps = state.opportunities.all()
        return {"opportunities": [render.opportunity(state, o, True) for o in opps]}

    return handler


def _add_party(state: SimulatorState) -> AdminHandler:
    async def handler(request: Request) -> Any:
        party_id = add_party(state, await _object_body(request, "party"))
        return {"party": render.party(state.parties[party_id])}

    return handler


def _add_user(state: SimulatorState) -> AdminHandler:
    async def handler(request: Request) -> Any:
        raw = await _object_body(request, "user")
        team_ids = [int(team_id) for team_id in raw.get("teams", [])]
        if any(team_id not in state.teams for team_id in team_ids):
            raise SeedError(f"User names unknown teams {team_ids}.")

        user = state.add_user(raw["username"], raw["name"], raw.get("id"))
        for team_id in team_ids:
            state.teams[team_id].member_ids.add(user.id)
        return {"user": render.user(user)}

    return handler
