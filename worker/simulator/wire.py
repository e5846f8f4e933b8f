"""Small helpers shared by the route modules: bodies, ids, query flags."""

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from .errors import BadRequest, NotFound
from .jsoncodec import ExactJSONResponse, MalformedJSON, loads

#: Most ids one multi-id GET may name (reference §2.1).
MAX_IDS_PER_GET = 10


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> ExactJSONResponse:
    """Return a JSON answer whose Decimal amounts keep their digits."""
    return ExactJSONResponse(body, status_code=status_code, headers=headers)


async def read_json(request: Request) -> Any:
    """Return the decoded request body.

    Raises:
        BadRequest: The body is not valid JSON.
    """
    try:
        return loads(await request.body())
    except MalformedJSON as exc:
        raise BadRequest(str(exc)) from exc


def path_id(request: Request, name: str = "id") -> int:
    """Return an integer path parameter.

    Raises:
        NotFound: The segment is not an integer, so it names nothing.
    """
    raw = request.path_params[name]
    if not raw.isdigit():
        raise NotFound()

    return int(raw)


def path_ids(request: Request) -> list[int]:
    """Return the ids of a ``{id}`` or ``{id1},{id2},...`` path segment.

    Raises:
        NotFound: A part is not an integer.
        BadRequest: More than ten ids were named.
    """
    parts = request.path_params["ids"].split(",")
    if len(parts) > MAX_IDS_PER_GET:
        raise BadRequest("too many ids")
    if not all(part.isdigit() for part in parts):
        raise NotFound()

    return [int(part) for part in parts]


def embeds(request: Request) -> set[str]:
    """Return the names listed in the ``embed`` query parameter."""
    raw = request.query_params.get("embed", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def since_param(request: Request) -> datetime | None:
    """Return the ``since`` query parameter as a UTC time, if given.

    Raises:
        BadRequest: The value is not an ISO-8601 timestamp.
    """
    raw = request.query_params.get("since")
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise BadRequest(f"Expected since as ISO-8601, got {raw!r}.") from exc

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
