"""The Capsule v2 HTTP client and the one place HTTP errors are mapped.

Every request passes the shared rate budget first and feeds its headers back
after. Failures leave this module only as :mod:`worker.errors` types:

==========================  ===========================================
what happened               raised
==========================  ===========================================
connect error, pool timeout  ``CapsuleUnavailable`` (nothing was sent)
read/write timeout, lost     ``OutcomeUnknown`` for a create, else
connection, deadline         ``CapsuleUnavailable``
500, 502, 503, 504           ``OutcomeUnknown`` for a create, else
                             ``CapsuleUnavailable``
other 5xx                    ``CapsuleUnavailable``
429                          ``RateLimited`` (the fleet pauses)
401, 403                     ``CapsuleUnauthorized``
400, 404, 422, other 4xx     ``CapsuleRejected`` with Capsule's message
==========================  ===========================================
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import httpx
import structlog

from worker import __version__
from worker.errors import (
    CapsuleRejected,
    CapsuleUnauthorized,
    CapsuleUnavailable,
    OutcomeUnknown,
    RateLimited,
)
from worker.ratebudget import LocalRateBudget, RedisRateBudget
from worker.settings import Settings

log = structlog.get_logger(__name__)

#: Statuses after which a create may nonetheless have been committed.
AMBIGUOUS_STATUSES = frozenset({500, 502, 503, 504})


class CapsuleClient:
    """A small synchronous Capsule client; one per process, made after fork.

    Args:
        settings: URL, token and timeouts.
        budget: the shared rate budget of the token's Capsule user.
        transport: an httpx transport, for tests of pure logic only.
    """

    def __init__(
        self,
        settings: Settings,
        budget: RedisRateBudget | LocalRateBudget,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._budget = budget
        self._deadline_s = settings.request_deadline_s
        self._http = httpx.Client(
            base_url=settings.capsule_api_url.rstrip("/") + "/",
            headers={
                "Authorization": f"Bearer {settings.require_token()}",
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": f"oppsync/{__version__}",
            },
            timeout=httpx.Timeout(
                settings.read_timeout_s,
                connect=settings.connect_timeout_s,
                pool=settings.connect_timeout_s,
            ),
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``path``; safe to retry. Returns the decoded JSON body."""
        return self._send("GET", path, params=params)

    def put(self, path: str, body: dict[str, Any]) -> Any:
        """PUT ``body``; only the fields sent change, so retrying is safe."""
        return self._send("PUT", path, body=body)

    def search(self, path: str, body: dict[str, Any]) -> Any:
        """POST a read-only query (filters); safe to retry."""
        return self._send("POST", path, body=body)

    def create(self, path: str, body: dict[str, Any]) -> Any:
        """POST a create. Not idempotent: ambiguous failures raise
        :class:`OutcomeUnknown`, and the caller must look before retrying."""
        return self._send("POST", path, body=body, creates=True)

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        creates: bool = False,
    ) -> Any:
        self._budget.acquire()
        started = time.monotonic()
        content = None if body is None else dumps_exact(body).encode()
        try:
            status, headers, raw = self._exchange(method, path, params, content)
        except httpx.HTTPError as exc:
            self._budget.observe({}, status_code=0)
            raise _transport_error(exc, method, path, creates) from exc
        pause_s = self._budget.observe(headers, status_code=status)
        duration_ms = round((time.monotonic() - started) * 1000)
        log.info(
            "capsule_request_sent",
            method=method,
            path=path,
            status_code=status,
            duration_ms=duration_ms,
        )
        if status >= 400:
            raise _status_error(status, raw, creates, pause_s)
        return json.loads(raw, parse_float=Decimal) if raw else None

    def _exchange(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        content: bytes | None,
    ) -> tuple[int, httpx.Headers, bytes]:
        """Send one request and read the body under an overall deadline.

        httpx bounds each read, not the whole exchange (design note 14), so
        the body is read in chunks against the deadline.
        """
        deadline = time.monotonic() + self._deadline_s
        request = self._http.build_request(
            method, path.lstrip("/"), params=params, content=content
        )
        response = self._http.send(request, stream=True)
        try:
            chunks = []
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(
                        "overall request deadline passed", request=request
                    )
            return response.status_code, response.headers, b"".join(chunks)
        finally:
            response.close()


def _transport_error(
    exc: httpx.HTTPError, method: str, path: str, creates: bool
) -> CapsuleUnavailable:
    where = f"{method} {path}"
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return CapsuleUnavailable(f"could not connect to Capsule for {where}: {exc}")
    if creates:
        return OutcomeUnknown(
            f"{where} was sent but no answer came ({type(exc).__name__}); "
            "the opportunity may exist."
        )
    return CapsuleUnavailable(f"{where} failed in transit: {type(exc).__name__}")


def _status_error(
    status: int, raw: bytes, creates: bool, pause_s: float | None
) -> Exception:
    message = capsule_message(raw) or f"HTTP {status}"
    if status == 429:
        return RateLimited(f"Capsule rate limit reached: {message}", wait_s=pause_s)
    if status in (401, 403):
        return CapsuleUnauthorized(
            f"Capsule refused the token ({status}): {message}",
            status_code=status,
            wait_s=pause_s,
        )
    if creates and status in AMBIGUOUS_STATUSES:
        return OutcomeUnknown(
            f"Capsule answered {status} to a create: {message}", status_code=status
        )
    if status >= 500:
        return CapsuleUnavailable(
            f"Capsule answered {status}: {message}", status_code=status
        )
    return CapsuleRejected(message, status_code=status)


def capsule_message(raw: bytes) -> str:
    """Return Capsule's own error text from a response body.

    422 bodies carry ``errors[]`` with ``field`` and ``message``; other errors
    carry ``message`` or ``error``. Anything else yields the raw text, cut short.
    """
    try:
        body = json.loads(raw)
    except ValueError:
        return raw[:200].decode(errors="replace").strip()
    if not isinstance(body, dict):
        return str(body)[:200]
    details = [
        _error_line(item) for item in body.get("errors") or [] if isinstance(item, dict)
    ]
    headline = str(body.get("message") or body.get("error") or "")
    if details:
        return f"{headline}: {'; '.join(details)}" if headline else "; ".join(details)
    return headline


def _error_line(item: dict[str, Any]) -> str:
    field = item.get("field")
    text = str(item.get("message", ""))
    return f"{text} (field {field})" if field else text


def dumps_exact(data: Any) -> str:
    """Encode JSON with :class:`Decimal` written digit for digit.

    The standard encoder turns decimals into floats, which can add binary
    tails (design note 18); amounts must reach Capsule exactly as given.
    """
    if isinstance(data, Decimal):
        return format(data, "f")
    if isinstance(data, dict):
        items = (f"{json.dumps(str(k))}:{dumps_exact(v)}" for k, v in data.items())
        return "{" + ",".join(items) + "}"
    if isinstance(data, list | tuple):
        return "[" + ",".join(dumps_exact(v) for v in data) + "]"
    return json.dumps(data)
