"""HTTP ingest as a client sees it: real Redis, real broker queue.

Most tests call the ASGI app in-process through Starlette's test client;
one runs ``oppsync serve`` and a worker and goes over a real socket all the
way to an opportunity in the simulator.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from tests.support import (
    REPO_ROOT,
    SESSION_PREFIXES,
    Simulator,
    Worker,
    free_port,
    queue_key,
    serving,
    settings_for,
    wait_for,
)
from worker.connections import connect_redis
from worker.ingest import build_service, create_ingest_app
from worker.job import Job
from worker.ledger import Ledger
from worker.settings import Settings

pytestmark = pytest.mark.integration

TOKEN = "ingest-token-1"
OTHER_TOKEN = "ingest-token-2"
SECRET = "webhook-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = REPO_ROOT / "examples"


def ingest_settings(**overrides: Any) -> Settings:
    """Settings with ingest credentials under a fresh key prefix."""
    settings = Settings.from_env().with_overrides(
        key_prefix=f"oppsync-test-{uuid.uuid4().hex[:8]}",
        ingest_tokens=f"{TOKEN}, {OTHER_TOKEN}",
        ingest_signing_secret=SECRET,
        ingest_max_body_bytes=4096,
        ingest_max_jobs=5,
        maps_dir=str(EXAMPLES),
        log_format="json",
        **overrides,
    )
    SESSION_PREFIXES.append(settings.key_prefix)
    return settings


def client_for(settings: Settings) -> TestClient:
    """Return a test client of the ingest app wired to real Redis."""
    service = build_service(settings)
    return TestClient(create_ingest_app(settings, service))


@pytest.fixture
def ingest() -> Iterator[tuple[TestClient, Settings]]:
    """The ingest app and its settings (fresh queue and ledger)."""
    settings = ingest_settings()
    with client_for(settings) as client:
        yield client, settings


def job(key: str | None = None, **extra: Any) -> dict[str, Any]:
    """Return a valid job by name (the key is random unless given)."""
    return {
        "idempotencyKey": key or f"http-{uuid.uuid4().hex[:10]}",
        "name": "Deal over HTTP",
        "party": {"name": "Betatech"},
        "milestone": {"pipeline": "Sales", "name": "Won"},
        **extra,
    }


def queued(settings: Settings) -> int:
    """Return the number of task messages waiting in the settings' queue."""
    return int(connect_redis(settings.redis_url).llen(queue_key(settings)))


def sign(body: bytes, secret: str = SECRET) -> str:
    """Return the signature header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_one_job_is_accepted_and_queued(ingest: tuple[TestClient, Settings]) -> None:
    """A valid job is answered 202 with its key and state, and one task is queued."""
    client, settings = ingest
    payload = job()

    response = client.post("/v1/jobs", json=payload, headers=AUTH)

    assert response.status_code == 202
    body = response.json()
    assert body["enqueued"] == 1
    assert body["jobs"] == [
        {
            "index": 0,
            "outcome": "enqueued",
            "key": payload["idempotencyKey"],
            "state": "queued",
        }
    ]
    assert queued(settings) == 1


def test_a_batch_keeps_valid_jobs_beside_refused_ones(
    ingest: tuple[TestClient, Settings],
) -> None:
    """422 lists each refused job's fields; the valid jobs are still enqueued."""
    client, settings = ingest
    good = [job(), job()]
    bad = job(probability=250)
    del bad["party"]

    response = client.post("/v1/jobs", json=[good[0], bad, good[1]], headers=AUTH)

    assert response.status_code == 422
    body = response.json()
    assert [r["outcome"] for r in body["jobs"]] == ["enqueued", "refused", "enqueued"]
    fields = {e["field"] for e in body["jobs"][1]["errors"]}
    assert fields == {"party", "probability"}
    assert queued(settings) == 2
    for item in good:
        state = client.get(f"/v1/jobs/{item['idempotencyKey']}", headers=AUTH)
        assert state.json()["state"] == "queued"


def test_posting_again_queues_nothing_new(ingest: tuple[TestClient, Settings]) -> None:
    """The same batch twice: the second answer is all duplicates, no new task."""
    client, settings = ingest
    batch = [job(), job()]
    client.post("/v1/jobs", json=batch, headers=AUTH)

    again = client.post("/v1/jobs", json=batch, headers=AUTH)

    assert again.status_code == 202
    assert again.json()["duplicate"] == 2
    assert [r["state"] for r in again.json()["jobs"]] == ["queued", "queued"]
    assert queued(settings) == 2


def test_a_key_reused_with_other_content_is_a_conflict(
    ingest: tuple[TestClient, Settings],
) -> None:
    """409 names the key; the first job stays as it was."""
    client, settings = ingest
    first = job()
    client.post("/v1/jobs", json=first, headers=AUTH)

    response = client.post(
        "/v1/jobs", json={**first, "name": "Other deal"}, headers=AUTH
    )

    assert response.status_code == 409
    result = response.json()["jobs"][0]
    assert result["outcome"] == "conflict"
    assert result["errors"][0]["field"] == "idempotencyKey"
    assert queued(settings) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer "},
        {"X-Oppsync-Signature": "sha256=" + "0" * 64},
    ],
    ids=["none", "wrong-token", "not-bearer", "empty", "bad-signature"],
)
def test_requests_without_valid_credentials_enqueue_nothing(
    ingest: tuple[TestClient, Settings], headers: dict[str, str]
) -> None:
    """401 for every missing or wrong credential, and the queue stays empty."""
    client, settings = ingest

    response = client.post("/v1/jobs", json=job(), headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert queued(settings) == 0
    assert client.get("/v1/jobs/anything", headers=headers).status_code == 401


def test_every_configured_token_is_accepted(
    ingest: tuple[TestClient, Settings],
) -> None:
    """Any token of the comma-separated list authenticates."""
    client, _ = ingest
    other = {"Authorization": f"Bearer {OTHER_TOKEN}"}

    assert client.post("/v1/jobs", json=job(), headers=other).status_code == 202


def test_a_signed_webhook_needs_no_token(ingest: tuple[TestClient, Settings]) -> None:
    """A body signed with the secret is accepted; one changed byte is not."""
    client, settings = ingest
    body = json.dumps(job()).encode()
    headers = {"X-Oppsync-Signature": sign(body), "Content-Type": "application/json"}

    accepted = client.post("/v1/jobs", content=body, headers=headers)
    tampered = client.post("/v1/jobs", content=body + b" ", headers=headers)

    assert accepted.status_code == 202
    assert tampered.status_code == 401
    assert queued(settings) == 1


def test_a_required_signature_is_needed_beside_the_token() -> None:
    """With signatures required, a token alone is refused; token plus signature pass."""
    settings = ingest_settings(ingest_require_signature=True)
    body = json.dumps(job()).encode()

    with client_for(settings) as client:
        token_only = client.post("/v1/jobs", content=body, headers=AUTH)
        both = client.post(
            "/v1/jobs",
            content=body,
            headers={**AUTH, "X-Oppsync-Signature": sign(body)},
        )

    assert token_only.status_code == 401
    assert both.status_code == 202
    assert queued(settings) == 1


def test_a_body_over_the_limit_is_refused_before_parsing(
    ingest: tuple[TestClient, Settings],
) -> None:
    """413 by declared length and by streamed bytes; nothing is enqueued."""
    client, settings = ingest
    big = json.dumps([job(description="x" * 5000)]).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    declared = client.post("/v1/jobs", content=big, headers=AUTH)
    streamed = client.post("/v1/jobs", content=chunks(), headers=AUTH)

    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert "4096 bytes" in streamed.json()["error"]
    assert queued(settings) == 0


def test_a_batch_over_the_job_limit_is_refused_whole(
    ingest: tuple[TestClient, Settings],
) -> None:
    """More jobs than the documented maximum: 400 naming it, nothing enqueued."""
    client, settings = ingest

    response = client.post("/v1/jobs", json=[job() for _ in range(6)], headers=AUTH)

    assert response.status_code == 400
    assert "at most 5 jobs" in response.json()["error"]
    assert queued(settings) == 0


@pytest.mark.parametrize(
    "body",
    [b"", b"{not json", b'{"name": 1, "name": 2}', b"\xff\xfe", b"[" * 4000],
    ids=["empty", "broken", "repeated-field", "not-utf8", "too-deep"],
)
def test_a_body_that_is_not_json_is_a_400(
    ingest: tuple[TestClient, Settings], body: bytes
) -> None:
    """Bodies that are no JSON value get 400 with a reason, never a 500."""
    client, settings = ingest

    response = client.post("/v1/jobs", content=body, headers=AUTH)

    assert response.status_code == 400
    assert response.json()["error"].startswith("the body is refused: ")
    assert queued(settings) == 0


@pytest.mark.parametrize("item", [1, "job", None, True, [job()]])
def test_items_that_are_not_objects_are_refused_one_by_one(
    ingest: tuple[TestClient, Settings], item: Any
) -> None:
    """A non-object beside a valid job is refused; the valid job still goes in."""
    client, settings = ingest

    response = client.post("/v1/jobs", json=[item, job()], headers=AUTH)

    assert response.status_code == 422
    outcomes = [r["outcome"] for r in response.json()["jobs"]]
    assert outcomes == ["refused", "enqueued"]
    assert queued(settings) == 1


def test_unknown_keys_are_404_and_probes_answer(
    ingest: tuple[TestClient, Settings],
) -> None:
    """GET of an unknown key is 404; /healthz and /readyz are 200 without a token."""
    client, _ = ingest

    assert client.get("/v1/jobs/no-such-key", headers=AUTH).status_code == 404
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_redis_down_is_a_503_not_a_500() -> None:
    """With Redis unreachable: /readyz and POST answer 503 with Retry-After."""
    settings = ingest_settings()
    service = build_service(settings)
    dead = settings.with_overrides(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    dead_service = build_service(dead)

    with TestClient(create_ingest_app(dead, dead_service)) as client:
        ready = client.get("/readyz")
        post = client.post("/v1/jobs", json=job(), headers=AUTH)

    assert ready.status_code == 503
    assert post.status_code == 503
    assert post.headers["retry-after"] == "5"
    assert service.is_ready()


def test_the_openapi_job_schema_is_the_validators_schema(
    ingest: tuple[TestClient, Settings],
) -> None:
    """/openapi.json carries the very schema every other door validates with."""
    client, _ = ingest

    spec = client.get("/openapi.json").json()

    expected = Job.model_json_schema(
        by_alias=True, ref_template="#/components/schemas/{model}"
    )
    expected.pop("$defs")
    assert spec["components"]["schemas"]["Job"] == expected
    assert spec["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]


def test_a_mapped_webhook_becomes_jobs(ingest: tuple[TestClient, Settings]) -> None:
    """POST ?map=NAME turns the sender's own payloads into jobs."""
    client, settings = ingest
    payloads = json.loads((EXAMPLES / "webhook-leads.json").read_text())

    response = client.post("/v1/jobs?map=webhook-leads", json=payloads, headers=AUTH)
    unknown = client.post("/v1/jobs?map=nope", json=payloads, headers=AUTH)

    assert response.status_code == 202, response.json()
    assert response.json()["enqueued"] == len(payloads)
    assert queued(settings) == len(payloads)
    assert unknown.status_code == 400
    assert "nope" in unknown.json()["error"]
    twice = client.post(
        "/v1/jobs?map=webhook-leads&map=crm-sales", json=payloads, headers=AUTH
    )
    assert twice.status_code == 400


def test_a_mapped_payload_missing_fields_is_refused_by_field(
    ingest: tuple[TestClient, Settings],
) -> None:
    """A payload the mapping cannot fill is refused naming the job field."""
    client, settings = ingest

    response = client.post("/v1/jobs?map=webhook-leads", json=[{}], headers=AUTH)

    assert response.status_code == 422
    assert response.json()["jobs"][0]["errors"]
    assert queued(settings) == 0


def test_serve_refuses_to_start_without_credentials(tmp_path: Path) -> None:
    """`oppsync serve` without tokens or secret exits 2 and says what to set."""
    env = {
        **os.environ,
        "OPPSYNC_INGEST_TOKENS": "",
        "OPPSYNC_INGEST_SIGNING_SECRET": "",
    }

    result = subprocess.run(
        [sys.executable, "-m", "worker.cli", "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )

    assert result.returncode == 2
    assert "OPPSYNC_INGEST_TOKENS" in result.stderr


def test_a_job_posted_over_a_socket_reaches_capsule(
    simulator: Simulator, workdir: Path
) -> None:
    """`oppsync serve` on a real port and a real worker: one opportunity is made."""
    settings = settings_for(
        simulator, ingest_tokens=TOKEN, ingest_port=free_port(), maps_dir=""
    )
    payload = job(owner={"username": "bob"}, team={"name": "East"})
    key = payload["idempotencyKey"]
    worker = Worker(settings, workdir, name="ingest").start()
    try:
        with serving(settings) as base:
            for _ in range(2):  # a sender retrying after a lost answer
                posted = httpx.post(f"{base}/v1/jobs", json=payload, headers=AUTH)
                assert posted.status_code == 202
            done = wait_for(
                lambda: _state(base, key) in {"verified", "repaired"}, timeout_s=60
            )
    finally:
        worker.stop()

    assert done
    ledger = Ledger(connect_redis(settings.redis_url), settings.key_prefix)
    record = ledger.get(key)
    assert record is not None and record.opportunity_id is not None
    created = simulator.opportunities_for(key)
    assert len(created) == 1
    assert created[0]["owner"]["id"] == 2 and created[0]["team"]["id"] == 10


def _state(base: str, key: str) -> str:
    response = httpx.get(f"{base}/v1/jobs/{key}", headers=AUTH, timeout=5.0)
    return str(response.json().get("state", ""))


def test_a_body_with_a_byte_order_mark_is_read(
    ingest: tuple[TestClient, Settings],
) -> None:
    """A UTF-8 byte order mark before the JSON does not make it unreadable."""
    client, settings = ingest
    body = b"\xef\xbb\xbf" + json.dumps(job()).encode()

    response = client.post("/v1/jobs", content=body, headers=AUTH)

    assert response.status_code == 202
    assert queued(settings) == 1


def test_a_body_that_stalls_is_answered_408() -> None:
    """A sender that stops mid-body gets 408 once the body timeout passes
    (over a real socket: the test client would buffer the body)."""
    settings = ingest_settings(ingest_body_timeout_s=0.5, ingest_port=free_port())
    head = (
        "POST /v1/jobs HTTP/1.1\r\nHost: oppsync\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n"
    )

    with (
        serving(settings),
        socket.create_connection(
            ("127.0.0.1", settings.ingest_port), timeout=10
        ) as sock,
    ):
        sock.sendall(head.encode() + b'{"name": ')
        answer = sock.recv(4096)

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert queued(settings) == 0


def test_a_required_signature_is_named_in_the_refusal() -> None:
    """With signatures required, the 401 says a signature is what is missing."""
    settings = ingest_settings(ingest_require_signature=True)

    with client_for(settings) as client:
        response = client.post("/v1/jobs", json=job(), headers=AUTH)

    assert response.status_code == 401
    assert response.json()["error"] == "a valid body signature is required"
