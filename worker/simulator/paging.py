"""Page parameters and ``Link`` headers of list endpoints (reference §6)."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import Request

from .errors import BadRequest

#: Items per page when ``perPage`` is not given.
DEFAULT_PER_PAGE = 50
#: Largest ``perPage`` Capsule accepts.
MAX_PER_PAGE = 100

Item = TypeVar("Item")


@dataclass(frozen=True)
class PageRequest:
    """A 1-based page number and its size."""

    page: int
    per_page: int

    @classmethod
    def from_request(cls, request: Request) -> "PageRequest":
        """Read ``page`` and ``perPage`` from the query string.

        Raises:
            BadRequest: A value is not an integer or out of range.
        """
        page = _int_param(request, "page", 1)
        per_page = _int_param(request, "perPage", DEFAULT_PER_PAGE)
        if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
            raise BadRequest(f"Expected page >= 1 and perPage 1-{MAX_PER_PAGE}.")

        return cls(page, per_page)

    def cut(self, items: Sequence[Item]) -> tuple[Sequence[Item], bool]:
        """Return this page's items and whether more follow."""
        start = (self.page - 1) * self.per_page
        end = start + self.per_page

        return items[start:end], len(items) > end


def page_headers(request: Request, page: PageRequest, has_more: bool) -> dict[str, str]:
    """Return ``Link`` (next/prev) and ``X-Pagination-Has-More`` headers."""
    links = []
    if has_more:
        links.append(_link(request, page.page + 1, "next"))
    if page.page > 1:
        links.append(_link(request, page.page - 1, "prev"))

    headers = {"X-Pagination-Has-More": "true" if has_more else "false"}
    if links:
        headers["Link"] = ", ".join(links)

    return headers


def _link(request: Request, page_number: int, relation: str) -> str:
    url = request.url.include_query_params(page=page_number)
    return f'<{url}>; rel="{relation}"'


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise BadRequest(f"Expected {name} to be an integer, got {raw!r}.") from exc
