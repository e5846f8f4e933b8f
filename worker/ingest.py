"""HTTP ingest: the door for upstream systems that do not run Python.

Routes (the full contract is :func:`openapi_spec`, served at
``/openapi.json``):

    POST /v1/jobs[?map=NAME]  one job, or a JSON array of at most
                              ``OPPSYNC_INGEST_MAX_JOBS`` jobs
    GET  /v1/jobs/{key}       one job's state, as ``oppsync status`` shows it
    GET  /healthz             the process answers
    GET  /readyz              Redis answers
    GET  /openapi.json        this contract

Every ``/v1`` request must authenticate: a bearer token from
``OPPSYNC_INGEST_TOKENS`` (compared in constant time), or, for webhook
senders that sign, an HMAC-SHA256 of the raw body keyed with
``OPPSYNC_INGEST_SIGNING_SECRET`` in the signature header (``sha256=<hex>``
or bare hex). With ``OPPSYNC_INGEST_REQUIRE_SIGNATURE`` the signature is
needed even beside a token. A body over ``OPPSYNC_INGEST_MAX_BODY_BYTES``
is answered 413 before a byte of it is parsed.

Each job of a batch stands alone: valid jobs are enqueued even when others
beside them are refused, and the answer lists every job's outcome. Posting
the same batch again is always safe: accepted jobs come back as duplicates.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import structlog
from kombu.exceptions import OperationalError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.connections import connect_redis
from worker.errors import JobInvalid
from worker.job import Job
from worker.ledger import Ledger
from worker.mapping import JobMapping, load_mappings
from worker.producer import Offer, Producer, Refusal, decode_json
from worker.settings import Settings

log = structlog.get_logger("oppsync.ingest")

#: Problems listed per refused job in an answer.
MAX_PROBLEMS = 20
#: Seconds one Redis command of a request may take.
REDIS_TIMEOUT_S = 3.0
#: Seconds a readiness probe waits for Redis.
PROBE_TIMEOUT_S = 2.0
#: Seconds a client is asked to wait after a 503.
RETRY_AFTER_S = 5
#: HTTP status of a batch, by the most serious outcome in it.
BATCH_STATUS = {"refused": 422, "conflict": 409}


class BodyTooLarge(Exception):
    """The request body exceeds the configured maximum."""


@dataclass(frozen=True)
class Guard:
    """Decides whether a request is authentic; never logs a credential."""

    tokens: tuple[bytes, ...]
    secret: bytes
    signature_header: str
    require_signature: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> Guard:
        """Build the guard from the ingest settings."""
        return cls(
            tokens=tuple(t.encode() for t in settings.ingest_token_list()),
            secret=settings.ingest_signing_secret.encode(),
            signature_header=settings.ingest_signature_header.strip(),
            require_signature=settings.ingest_require_signature,
        )

    def has_valid_bearer(self, headers: Headers) -> bool:
        """Return whether the request carries one of the bearer tokens.

        Every token is compared, in constant time, whatever matched first.
        """
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return False
        offered = given.strip().encode()
        matches = [hmac.compare_digest(offered, token) for token in self.tokens]
        return any(matches)

    def may_pass(self, headers: Headers, bearer_ok: bool) -> bool:
        """Return whether the request can still authenticate once its body
        is read (so that a request with no credentials reads nothing)."""
        signed = bool(self.secret) and self.signature_header in headers
        if self.require_signature:
            return signed
        return bearer_ok or signed

    def passes(self, headers: Headers, body: bytes, bearer_ok: bool) -> bool:
        """Return whether the request is authentic, its body read."""
        signature_ok = self._has_valid_signature(headers, body)
        if self.require_signature:
            return signature_ok
        return bearer_ok or signature_ok

    def _has_valid_signature(self, headers: Headers, body: bytes) -> bool:
        if not self.secret:
            return False
        given = headers.get(self.signature_header, "").strip()
        given = given.removeprefix("sha256=").lower()
        expected = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(given.encode(), expected.encode())


class IngestService:
    """Turns decoded bodies into enqueued jobs and job states."""

    def __init__(
        self,
        producer: Producer,
        ledger: Ledger,
        client: redis.Redis,
        mappings: Mapping[str, JobMapping],
    ) -> None:
        self._producer = producer
        self._ledger = ledger
        self._redis = client
        self.mappings = dict(mappings)
        # One batch at a time through the broker connection: Celery's
        # producer is not documented as safe to share between threads.
        self._lock = threading.Lock()

    def offer_all(
        self, items: list[Any], mapping: JobMapping | None
    ) -> list[dict[str, Any]]:
        """Offer each item as a job; returns one result per item, in order.

        Idempotent per job key. Raises Redis or broker errors (the caller
        answers 503 and the client posts again).
        """
        with self._lock:
            return [self._offer(i, item, mapping) for i, item in enumerate(items)]

    def _offer(
        self, index: int, item: Any, mapping: JobMapping | None
    ) -> dict[str, Any]:
        if mapping is not None:
            offer = self._offer_mapped(item, mapping)
        else:
            offer = self._producer.offer(item)
        return self._result(index, offer)

    def _offer_mapped(self, item: Any, mapping: JobMapping) -> Offer:
        try:
            job = mapping.apply(item)
        except JobInvalid as exc:
            return Offer("refused", None, list(exc.problems))
        return self._producer.offer(job)

    def _result(self, index: int, offer: Offer) -> dict[str, Any]:
        result: dict[str, Any] = {"index": index, "outcome": offer.outcome}
        if offer.key is not None:
            result["key"] = offer.key
        if offer.outcome == "enqueued":
            result["state"] = "queued"
        elif offer.outcome == "duplicate":
            record = self._ledger.get(offer.key or "")
            result["state"] = record.state if record else "unknown"
        if offer.problems:
            result["errors"] = _errors(offer.problems)
        return result

    def status(self, key: str) -> dict[str, Any] | None:
        """Return the job's public status, or None for an unknown key."""
        record = self._ledger.get(key)
        return None if record is None else record.as_status()

    def is_ready(self) -> bool:
        """Return whether Redis answers."""
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False


class JobKeyConvertor(Convertor[str]):
    """A path segment that may hold any character, ``/`` and newlines
    included, so that every key reaches the handler (and its 401 or 404)."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("jobkey", JobKeyConvertor())


def create_ingest_app(settings: Settings, service: IngestService) -> Starlette:
    """Return the ASGI app; ``settings`` gives limits and credentials.

    Raises:
        ConfigurationError: no credentials are configured.
    """
    settings.check_ingest()
    guard = Guard.from_settings(settings)
    spec = openapi_spec(settings, sorted(service.mappings))
    routes = JobRoutes(settings, service, guard, spec)
    return Starlette(
        routes=[
            Route("/v1/jobs", routes.post_jobs, methods=["POST"]),
            Route("/v1/jobs/{key:jobkey}", routes.get_job, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", routes.readyz, methods=["GET"]),
            Route("/openapi.json", routes.openapi, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )


def build_service(settings: Settings) -> IngestService:
    """Wire the service to Redis, the broker and the mapping directory.

    Raises:
        MappingInvalid: a mapping file in ``OPPSYNC_MAPS_DIR`` is broken.
    """
    # A sender waits on every Redis call: a frozen Redis must turn into a
    # 503 within seconds, not after the workers' patient timeouts.
    client = connect_redis(settings.redis_url, timeout_s=REDIS_TIMEOUT_S)
    ledger = Ledger(client, settings.key_prefix)
    producer = Producer.for_settings(settings, ledger)
    mappings = load_mappings(Path(settings.maps_dir)) if settings.maps_dir else {}
    # Probes get their own client, with a shorter timeout still.
    probe = connect_redis(settings.redis_url, timeout_s=PROBE_TIMEOUT_S)
    return IngestService(producer, ledger, probe, mappings)


async def http_error(_: Request, exc: Exception) -> Response:
    """Answer routing errors (unknown path, wrong method) in JSON too."""
    assert isinstance(exc, HTTPException)  # the only type registered
    response = _error(exc.status_code, exc.detail)
    response.headers.update(exc.headers or {})
    return response


async def healthz(_: Request) -> Response:
    """Answer 200 while the process runs."""
    return JSONResponse({"status": "ok"})


class JobRoutes:
    """The request handlers that need the service and the guard."""

    def __init__(
        self,
        settings: Settings,
        service: IngestService,
        guard: Guard,
        spec: dict[str, Any],
    ) -> None:
        self._spec = spec
        self._max_body_bytes = settings.ingest_max_body_bytes
        self._max_jobs = settings.ingest_max_jobs
        self._body_timeout_s = settings.ingest_body_timeout_s
        self._service = service
        self._guard = guard

    async def post_jobs(self, request: Request) -> Response:
        """Validate and enqueue one job or an array of jobs."""
        bearer_ok = self._guard.has_valid_bearer(request.headers)
        if not self._guard.may_pass(request.headers, bearer_ok):
            return _unauthorized(self._guard.require_signature)
        try:
            body = await asyncio.wait_for(
                read_body(request, self._max_body_bytes), self._body_timeout_s
            )
        except BodyTooLarge:
            return _too_large(f"the body exceeds {self._max_body_bytes} bytes")
        except TimeoutError:
            log.info("ingest_request_refused", reason="body_timeout")
            return _error(
                408, f"the body did not arrive within {self._body_timeout_s:g} s"
            )
        if not self._guard.passes(request.headers, body, bearer_ok):
            return _unauthorized(self._guard.require_signature)

        if len(request.query_params.getlist("map")) > 1:
            return _error(400, "give at most one map")
        mapping_name = request.query_params.get("map")
        mapping = self._service.mappings.get(mapping_name or "")
        if mapping_name is not None and mapping is None:
            return _error(
                400, f"no mapping named {_shortened(mapping_name)!r} is configured"
            )
        items = decode_json(body, 0)
        if isinstance(items, Refusal):
            return _error(400, f"the body is refused: {items.message}")
        batch = items if isinstance(items, list) else [items]
        if len(batch) > self._max_jobs:
            return _error(400, f"a call takes at most {self._max_jobs} jobs")

        return await self._offer(batch, mapping)

    async def _offer(self, batch: list[Any], mapping: JobMapping | None) -> Response:
        try:
            results = await run_in_threadpool(self._service.offer_all, batch, mapping)
        except (redis.RedisError, OperationalError) as exc:
            log.warning("ingest_unavailable", error_type=type(exc).__name__)
            return _error(503, "the queue is unreachable; post again later")
        counts = _counts(results)
        log.info("ingest_jobs_received", jobs=len(batch), **counts)
        status = 202
        for outcome, code in BATCH_STATUS.items():
            if counts[outcome]:
                status = code
                break
        return JSONResponse({**counts, "jobs": results}, status_code=status)

    async def get_job(self, request: Request) -> Response:
        """Return one job's state; 404 for an unknown key."""
        if not self._guard.has_valid_bearer(request.headers):
            return _unauthorized()
        key = request.path_params["key"]
        try:
            status = await run_in_threadpool(self._service.status, key)
        except redis.RedisError:
            return _error(503, "the ledger is unreachable; ask again later")
        if status is None:
            return _error(404, f"no job with key {_shortened(key)!r}")
        return JSONResponse(status)

    async def openapi(self, _: Request) -> Response:
        """Serve the OpenAPI document."""
        return JSONResponse(self._spec)

    async def readyz(self, _: Request) -> Response:
        """Answer 200 when Redis answers, else 503."""
        if await run_in_threadpool(self._service.is_ready):
            return JSONResponse({"status": "ready"})
        return _error(503, "Redis does not answer")


async def read_body(request: Request, max_bytes: int) -> bytes:
    """Read the body, stopping as soon as it exceeds ``max_bytes``.

    Raises:
        BodyTooLarge: by the declared length or by the bytes received.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _errors(problems: list[tuple[str, str]]) -> list[dict[str, str]]:
    """Return the problems as answer entries, at most ``MAX_PROBLEMS`` of
    them (a job with thousands of unknown fields must not make the answer
    thousands of times larger than the request)."""
    shown = [{"field": f, "message": m} for f, m in problems[:MAX_PROBLEMS]]
    if len(problems) > MAX_PROBLEMS:
        more = len(problems) - MAX_PROBLEMS
        shown.append({"field": "(job)", "message": f"and {more} more problems"})
    return shown


def _counts(results: list[dict[str, Any]]) -> dict[str, int]:
    outcomes = [r["outcome"] for r in results]
    return {
        name: outcomes.count(name)
        for name in ("enqueued", "duplicate", "conflict", "refused")
    }


def _shortened(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _error(status: int, message: str) -> Response:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _unauthorized(signature_required: bool = False) -> Response:
    log.info("ingest_request_refused", reason="unauthenticated")
    needed = (
        "a valid body signature is required"
        if signature_required
        else "a valid bearer token or body signature is required"
    )
    response = _error(401, needed)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _too_large(message: str) -> Response:
    log.info("ingest_request_refused", reason="too_large")
    return _error(413, message)


def openapi_spec(settings: Settings, mapping_names: list[str]) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document; the job schema is the one every
    other door (CLI, Python producer) validates with."""
    job_schema = Job.model_json_schema(
        by_alias=True, ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = job_schema.pop("$defs", {})
    schemas["Job"] = job_schema
    schemas.update(_RESPONSE_SCHEMAS)
    return {
        "openapi": "3.1.0",
        "info": {"title": "oppsync ingest", "version": "1"},
        "paths": _paths(settings, mapping_names),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "signature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": settings.ingest_signature_header,
                    "description": "sha256=<hex HMAC-SHA256 of the raw body>",
                },
            },
        },
        "security": [{"bearer": []}, {"signature": []}],
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: str = "Error") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
    }


def _map_parameter(mapping_names: list[str]) -> dict[str, Any]:
    return {
        "name": "map",
        "in": "query",
        "required": False,
        "schema": {"enum": mapping_names},
        "description": "a configured mapping that turns each posted object "
        "into a job (the body is then the sender's own shape)",
    }


def _paths(settings: Settings, mapping_names: list[str]) -> dict[str, Any]:
    batch = {
        "type": "array",
        "items": _ref("Job"),
        "maxItems": settings.ingest_max_jobs,
    }
    post: dict[str, Any] = {
        "summary": "Enqueue one job or an array of jobs",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"oneOf": [_ref("Job"), batch]}}
            },
        },
        "responses": {
            "202": _answer("every job enqueued or already known", "BatchResult"),
            "400": _answer("not JSON, too many jobs, or an unknown mapping"),
            "401": _answer("no valid token or signature"),
            "409": _answer("a key is taken by other content", "BatchResult"),
            "408": _answer("the body did not arrive in time"),
            "413": _answer("the body is too large"),
            "422": _answer("some jobs refused; the rest enqueued", "BatchResult"),
            "503": _answer("Redis or the broker is unreachable"),
        },
    }
    if mapping_names:  # the parameter exists only where mappings do
        post["parameters"] = [_map_parameter(mapping_names)]
    get = {
        "summary": "One job's state",
        "security": [{"bearer": []}],
        "parameters": [
            {
                "name": "key",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
            }
        ],
        "responses": {
            "200": _answer("the job's state", "JobStatus"),
            "401": _answer("no valid token"),
            "404": _answer("no job with this key"),
            "503": _answer("Redis is unreachable"),
        },
    }
    probe = {"description": "probe answer", "content": {"application/json": {}}}
    return {
        "/v1/jobs": {"post": post},
        "/v1/jobs/{key}": {"get": get},
        "/healthz": {"get": {"security": [], "responses": {"200": probe}}},
        "/readyz": {"get": {"security": [], "responses": {"200": probe, "503": probe}}},
    }


_NULLABLE_STRING = {"type": ["string", "null"]}
_RESPONSE_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "Problem": {
        "type": "object",
        "required": ["field", "message"],
        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
    },
    "JobResult": {
        "type": "object",
        "required": ["index", "outcome"],
        "properties": {
            "index": {"type": "integer", "minimum": 0},
            "outcome": {"enum": ["enqueued", "duplicate", "conflict", "refused"]},
            "key": {"type": "string"},
            "state": {"type": "string"},
            "errors": {"type": "array", "items": _ref("Problem")},
        },
    },
    "BatchResult": {
        "type": "object",
        "required": ["enqueued", "duplicate", "conflict", "refused", "jobs"],
        "properties": {
            "enqueued": {"type": "integer"},
            "duplicate": {"type": "integer"},
            "conflict": {"type": "integer"},
            "refused": {"type": "integer"},
            "jobs": {"type": "array", "items": _ref("JobResult")},
        },
    },
    "JobStatus": {
        "type": "object",
        "required": ["key", "state"],
        "properties": {
            "key": {"type": "string"},
            "state": {"type": "string"},
            "opportunityId": {"type": ["integer", "null"]},
            "attempts": {"type": ["integer", "null"]},
            "error": _NULLABLE_STRING,
            "createdAt": _NULLABLE_STRING,
            "updatedAt": _NULLABLE_STRING,
        },
    },
}
