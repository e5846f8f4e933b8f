"""The ingest guard: who may post, decided without a server."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from starlette.datastructures import Headers

from worker.errors import ConfigurationError
from worker.ingest import Guard
from worker.settings import Settings

BODY = b'{"name": "x"}'
SIGNATURE = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()


def guard(**overrides: object) -> Guard:
    """Return a guard with two tokens and a signing secret."""
    options = {
        "ingest_tokens": " one ,two,, ",
        "ingest_signing_secret": "s3cret",
        **overrides,
    }
    settings = Settings().with_overrides(**options)
    return Guard.from_settings(settings)


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        ("Bearer one", True),
        ("bearer two", True),
        ("BEARER  one ", True),
        ("Bearer one,two", False),
        ("Bearer on", False),
        ("Bearer", False),
        ("Basic one", False),
        ("one", False),
        ("", False),
    ],
)
def test_bearer_tokens_match_whole_and_scheme_is_case_blind(
    authorization: str, expected: bool
) -> None:
    """Each listed token matches only in full, behind a Bearer scheme."""
    headers = Headers({"authorization": authorization})

    assert guard().has_valid_bearer(headers) is expected


@pytest.mark.parametrize(
    ("signature", "expected"),
    [
        (f"sha256={SIGNATURE}", True),
        (SIGNATURE, True),
        (SIGNATURE.upper(), True),
        (f" sha256={SIGNATURE} ", True),
        (f"sha1={SIGNATURE}", False),
        (SIGNATURE[:-1], False),
        ("", False),
    ],
)
def test_signatures_are_hex_hmac_of_the_raw_body(
    signature: str, expected: bool
) -> None:
    """The signature header holds the body's HMAC-SHA256, with or without
    its ``sha256=`` label."""
    headers = Headers({"x-oppsync-signature": signature})

    assert guard().passes(headers, BODY, bearer_ok=False) is expected


def test_a_required_signature_is_not_replaced_by_a_token() -> None:
    """With signatures required, a valid token alone does not pass."""
    strict = guard(ingest_require_signature=True)
    signed = Headers({"x-oppsync-signature": SIGNATURE})

    assert not strict.may_pass(Headers({}), bearer_ok=True)
    assert not strict.passes(Headers({}), BODY, bearer_ok=True)
    assert strict.passes(signed, BODY, bearer_ok=False)


def test_without_a_secret_no_signature_passes() -> None:
    """A signature cannot authenticate when no secret is configured."""
    tokens_only = guard(ingest_signing_secret="")
    headers = Headers(
        {"x-oppsync-signature": hmac.new(b"", BODY, "sha256").hexdigest()}
    )

    assert not tokens_only.may_pass(headers, bearer_ok=False)
    assert not tokens_only.passes(headers, BODY, bearer_ok=False)


def test_serving_without_credentials_is_refused() -> None:
    """No token and no secret: the settings check names what to set."""
    with pytest.raises(ConfigurationError, match="OPPSYNC_INGEST_TOKENS"):
        Settings().check_ingest()
