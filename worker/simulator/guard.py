"""What happens around every ``/api/v2`` handler.

In order: bearer authentication (401), the per-user rate limit (429),
the write scope (403), fault injection, the handler itself, and finally
the ``X-RateLimit-*`` headers, which every authenticated answer carries,
errors included. The request is then counted under its route template.
"""

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from .errors import ApiError
from .faults import FaultRule
from .model import TokenGrant
from .state import SimulatorState
from .wire import json_response

#: Path prefix of the simulated API.
API_PREFIX = "/api/v2"

Handler = Callable[[Request, TokenGrant], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]

_UNAUTHORISED_HEADERS = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def guarded(
    state: SimulatorState, template: str, handler: Handler, write: bool = False
) -> Endpoint:
    """Wrap a handler with auth, rate limit, scope, faults and counting.

    Args:
        state: The tenant the handler works on.
        template: Route template counted in stats, e.g. ``/opportunities/{id}``.
        handler: The work itself; may raise :class:`ApiError`.
        write: Whether the route needs the ``write`` scope.
    """

    async def endpoint(request: Request) -> Response:
        response = await _answer(state, request, handler, write)
        state.stats.record(f"{request.method} {template}", response.status_code)
        return response

    return endpoint


async def _answer(
    state: SimulatorState, request: Request, handler: Handler, write: bool
) -> Response:
    grant = _authenticate(state, request)
    if grant is None:
        message = "The access token is missing, expired or revoked."
        return json_response({"message": message}, 401, _UNAUTHORISED_HEADERS)

    decision = state.rate_limiter.admit(grant.user_id)
    if not decision.allowed:
        response: Response = json_response({"error": "rate limit reached"}, 429)
    elif write and grant.scope != "write":
        response = json_response({"message": "Requires additional scope"}, 403)
    else:
        response = await _run_with_faults(state, request, handler, grant)

    response.headers.update(decision.headers())
    return response


def _authenticate(state: SimulatorState, request: Request) -> TokenGrant | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None

    return state.tokens.get(token.strip())


async def _run_with_faults(
    state: SimulatorState, request: Request, handler: Handler, grant: TokenGrant
) -> Response:
    path = request.url.path.removeprefix(API_PREFIX)
    fault = state.faults.pick(request.method, path)
    if fault is None:
        return await _handle(request, handler, grant)

    if fault.kind == "error":
        return _injected_error(fault)
    if fault.kind == "latency":
        await asyncio.sleep(fault.delay_s)
        return await _handle(request, handler, grant)

    response = await _handle(request, handler, grant)
    if fault.kind == "commit_late":
        await asyncio.sleep(fault.delay_s)
        return response

    # commit_502: the work is done, but a gateway hides the answer.
    gateway = json_response({"message": "Bad Gateway"}, 502)
    gateway.background = response.background
    return gateway


async def _handle(request: Request, handler: Handler, grant: TokenGrant) -> Response:
    try:
        return await handler(request, grant)
    except ApiError as exc:
        return json_response(exc.body(), exc.status_code)


def _injected_error(fault: FaultRule) -> Response:
    message = f"Injected fault: the service answered {fault.status}."
    return json_response({"message": message}, fault.status)
