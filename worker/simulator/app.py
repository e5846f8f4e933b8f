"""The ASGI application of the Capsule v2 simulator."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .admin_routes import admin_routes
from .directory_routes import directory_routes
from .errors import NotFound
from .guard import API_PREFIX, guarded
from .model import TokenGrant
from .opportunity_routes import opportunity_routes
from .state import SimulatorState

_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def create_app(state: SimulatorState) -> Starlette:
    """Build the simulator app serving ``state``.

    Routes under ``/api/v2`` follow the Capsule contract; ``/_sim/`` holds
    the control endpoints. Any other ``/api/v2`` path answers 404 after
    authentication, so it still carries the rate-limit headers.
    """
    routes = [
        *opportunity_routes(state),
        *directory_routes(state),
        *admin_routes(state),
        _unknown_path_route(state),
    ]
    app = Starlette(routes=routes)
    app.state.simulator = state

    return app


def _unknown_path_route(state: SimulatorState) -> Route:
    async def handler(request: Request, grant: TokenGrant) -> Response:
        raise NotFound()

    endpoint = guarded(state, "(unknown path)", handler)
    return Route(API_PREFIX + "/{rest:path}", endpoint, methods=_ALL_METHODS)
