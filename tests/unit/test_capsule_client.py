"""The Capsule client's error mapping and wire format, over a mock transport."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from worker.capsule import CapsuleClient, capsule_message, dumps_exact
from worker.errors import (
    CapsuleRejected,
    CapsuleUnauthorized,
    CapsuleUnavailable,
    OutcomeUnknown,
    RateLimited,
)
from worker.settings import Settings


class FreeBudget:
    """A budget that never waits and remembers what it was told."""

    def __init__(self) -> None:
        self.observed: list[int] = []

    def acquire(self) -> None:
        """Allow every request."""

    def observe(self, headers: Any, *, status_code: int = 200) -> float | None:
        """Record the status; pause 30 s after a 429, 401 or 403."""
        self.observed.append(status_code)
        return 30.0 if status_code in (401, 403, 429) else None


def client_for(handler: Any) -> CapsuleClient:
    """Return a client whose requests go to ``handler``."""
    settings = Settings(
        capsule_api_url="https://capsule.test/api/v2", capsule_api_token="t"
    )
    return CapsuleClient(settings, FreeBudget(), transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


def answering(status: int, body: Any = None) -> CapsuleClient:
    """Return a client whose every request gets ``status`` and ``body``."""
    return client_for(lambda request: httpx.Response(status, json=body))


@pytest.mark.parametrize(
    ("status", "creates", "error"),
    [
        (400, True, CapsuleRejected),
        (404, False, CapsuleRejected),
        (422, True, CapsuleRejected),
        (401, False, CapsuleUnauthorized),
        (403, True, CapsuleUnauthorized),
        (429, True, RateLimited),
        (500, True, OutcomeUnknown),
        (502, True, OutcomeUnknown),
        (503, True, OutcomeUnknown),
        (504, True, OutcomeUnknown),
        (503, False, CapsuleUnavailable),
        (507, True, CapsuleUnavailable),
    ],
)
def test_status_maps_to_error(
    status: int, creates: bool, error: type[Exception]
) -> None:
    """Each HTTP status becomes the error class that encodes its retry decision."""
    client = answering(status, {"message": "nope"})

    with pytest.raises(error):
        if creates:
            client.create("opportunities", {"opportunity": {}})
        else:
            client.get("opportunities/1")


def test_5xx_to_a_read_is_not_an_unknown_outcome() -> None:
    """Only a create can have an unknown outcome; a failed read is plainly retryable."""
    with pytest.raises(CapsuleUnavailable) as caught:
        answering(502).get("users")

    assert not isinstance(caught.value, OutcomeUnknown)


def test_connect_error_on_create_is_plainly_retryable() -> None:
    """A create that never connected cannot have created anything."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(CapsuleUnavailable) as caught:
        client_for(refuse).create("opportunities", {})

    assert not isinstance(caught.value, OutcomeUnknown)


def test_read_timeout_on_create_is_an_unknown_outcome() -> None:
    """A create sent but not answered may exist: the caller must look first."""

    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(OutcomeUnknown):
        client_for(hang).create("opportunities", {})


def test_422_message_is_capsules_own() -> None:
    """The error carries Capsule's validation messages with their fields."""
    body = {
        "message": "Validation Failed",
        "errors": [{"message": "owner is not a member of the team", "field": "owner"}],
    }

    with pytest.raises(CapsuleRejected) as caught:
        answering(422, body).create("opportunities", {})

    assert str(caught.value) == (
        "Validation Failed: owner is not a member of the team (field owner)"
    )
    assert caught.value.status_code == 422


def test_429_waits_for_the_reset() -> None:
    """A 429 carries the pause the budget computed from the headers."""
    with pytest.raises(RateLimited) as caught:
        answering(429, {"error": "rate limit reached"}).get("users")

    assert caught.value.wait_s == 30.0
    assert "rate limit reached" in str(caught.value)


def test_amounts_go_out_exactly() -> None:
    """A decimal amount is written digit for digit, never through a float."""
    seen: list[bytes] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(201, json={"opportunity": {"id": 7}})

    client_for(record).create("opportunities", {"value": {"amount": Decimal("0.10")}})

    assert seen == [b'{"value":{"amount":0.10}}']


def test_requests_carry_bearer_token_and_json_headers() -> None:
    """Every request authenticates and asks for JSON."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    client_for(record).get("users", {"page": 2})

    [request] = seen
    assert request.headers["Authorization"] == "Bearer t"
    assert request.headers["Accept"] == "application/json"
    assert str(request.url) == "https://capsule.test/api/v2/users?page=2"


def test_message_of_odd_bodies() -> None:
    """Non-JSON and unexpected bodies still yield a readable message."""
    assert capsule_message(b"<html>Bad Gateway</html>") == "<html>Bad Gateway</html>"
    assert capsule_message(b'{"error": "rate limit reached"}') == "rate limit reached"
    assert capsule_message(b"[1]") == "[1]"


def test_dumps_exact_matches_json_for_plain_values() -> None:
    """Apart from decimals, the encoder writes what the json module writes."""
    data = {"a": [1, "x", None, True, {"b": 2.5}], "é": "ü"}

    assert json.loads(dumps_exact(data)) == data
