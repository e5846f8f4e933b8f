"""Fuzzing HTTP ingest from its own OpenAPI document.

Schemathesis generates requests (valid and invalid) for every operation and
checks each answer against the document: no 5xx, only documented status
codes and bodies. Beside its checks, every job an answer calls enqueued or
duplicate must be in the ledger, and at the end the queue must hold exactly
one task per enqueued key: no accepted job may be lost or doubled.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.config import SchemathesisConfig
from starlette.testclient import TestClient

from tests.support import REPO_ROOT, SESSION_PREFIXES, queue_key
from worker.connections import connect_redis
from worker.ingest import build_service, create_ingest_app
from worker.ledger import Ledger
from worker.settings import Settings

pytestmark = pytest.mark.integration

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SETTINGS = Settings.from_env().with_overrides(
    key_prefix=f"oppsync-test-fuzz-{uuid.uuid4().hex[:8]}",
    ingest_tokens=TOKEN,
    ingest_signing_secret="fuzz-secret",
    ingest_max_body_bytes=65_536,
    ingest_max_jobs=20,
    maps_dir=str(REPO_ROOT / "examples"),
    log_format="json",
)
#: Keys that some answer called enqueued.
ENQUEUED: set[str] = set()


SESSION_PREFIXES.append(SETTINGS.key_prefix)
# Building the app touches no server: Redis is first used by a request.
APP = create_ingest_app(SETTINGS, build_service(SETTINGS))
#: Schema-valid jobs may still be refused (422): the schema cannot state
#: every rule (printable keys, real currency codes, non-blank text), so the
#: "valid data is accepted" check is off; a too-large body is a rejection.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"enabled": False},
            "negative_data_rejection": {"expected-statuses": [400, 401, 409, 413, 422]},
        }
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)


@schema.parametrize()
@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same cases on every run: CI must not be a lottery
    suppress_health_check=list(HealthCheck),
)
def test_no_input_breaks_ingest(case: Case) -> None:
    """Every generated request gets a documented answer, never a 5xx,
    and every job it accepted is in the ledger."""
    response = case.call_and_validate(headers=AUTH)

    if response.status_code in (202, 409, 422) and case.path == "/v1/jobs":
        ledger = Ledger(connect_redis(SETTINGS.redis_url), SETTINGS.key_prefix)
        for result in response.json()["jobs"]:
            if result["outcome"] in ("enqueued", "duplicate"):
                assert ledger.get(result["key"]) is not None, result
            if result["outcome"] == "enqueued":
                ENQUEUED.add(result["key"])


#: Valid jobs, drawn from a small space so that keys and contents repeat.
VALID_JOBS = st.builds(
    lambda key, name, amount: {
        "idempotencyKey": f"fuzz-{key}",
        "name": name,
        "partyId": 1,
        "milestoneId": 2,
        "value": {"amount": amount, "currency": "EUR"},
    },
    key=st.integers(0, 30),
    name=st.sampled_from(["Deal A", "Deal B"]),
    amount=st.sampled_from(["10", "10.50", 7]),
)
#: Anything JSON can carry, as a job that is almost certainly refused.
JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(batch=st.lists(VALID_JOBS | JUNK, min_size=1, max_size=20))
@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_mixed_batches_lose_no_accepted_job(batch: list[Any]) -> None:
    """Batches of valid jobs and junk: one answer per item, and every job
    answered enqueued or duplicate is in the ledger under its content."""
    with TestClient(APP) as client:
        response = client.post("/v1/jobs", json=batch, headers=AUTH)

    assert response.status_code in (202, 409, 422)
    results = response.json()["jobs"]
    assert [r["index"] for r in results] == list(range(len(batch)))
    ledger = Ledger(connect_redis(SETTINGS.redis_url), SETTINGS.key_prefix)
    for result in results:
        if result["outcome"] in ("enqueued", "duplicate"):
            assert ledger.get(result["key"]) is not None, result
        if result["outcome"] == "enqueued":
            ENQUEUED.add(result["key"])


def test_every_enqueued_job_was_queued_once() -> None:
    """After the fuzzing, the queue holds exactly one task per enqueued key."""
    client = connect_redis(SETTINGS.redis_url)

    assert len(ENQUEUED) > 5  # the fuzzing did reach the accepting path
    assert client.llen(queue_key(SETTINGS)) == len(ENQUEUED)
