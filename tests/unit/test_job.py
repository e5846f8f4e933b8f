"""The job schema: what is accepted, and how refusals name their field."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.errors import JobInvalid
from worker.job import derive_key, parse_job

VALID: dict[str, Any] = {
    "name": "Deal",
    "partyId": 1,
    "milestone": {"pipeline": "Sales", "name": "Won"},
}


def problems(data: Any) -> list[tuple[str, str]]:
    """Return the (field, message) pairs a job is refused with."""
    with pytest.raises(JobInvalid) as caught:
        parse_job(data)
    return caught.value.problems


def test_minimal_job_is_accepted() -> None:
    """A name, a party and a milestone make a job."""
    job = parse_job(VALID)

    assert job.name == "Deal"
    assert job.key.startswith("auto-")


def test_derived_key_is_stable_and_content_bound() -> None:
    """A derived key is the same for the same content and differs otherwise."""
    assert derive_key(parse_job(VALID)) == derive_key(parse_job(dict(VALID)))
    assert derive_key(parse_job(VALID)) != derive_key(
        parse_job({**VALID, "name": "Other"})
    )


def test_given_key_wins() -> None:
    """An idempotency key given by the producer is the job's key."""
    assert parse_job({**VALID, "idempotencyKey": "crm-42"}).key == "crm-42"


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"name": "   "}, "name", "blank"),
        ({"partyId": None}, "party", "is required"),
        ({"party": {"name": "Acme"}}, "party", "not both"),
        ({"value": {"amount": 10}}, "value.currency", "required when amount is set"),
        ({"value": {"amount": 10, "currency": "usd"}}, "value.currency", "ISO 4217"),
        ({"value": {"amount": 10, "currency": "XYZ"}}, "value.currency", "ISO 4217"),
        ({"value": {"amount": "1e5", "currency": "USD"}}, "value.amount", "decimal"),
        ({"value": {"amount": -1, "currency": "USD"}}, "value.amount", "negative"),
        ({"value": {"amount": True, "currency": "USD"}}, "value.amount", "number"),
        ({"expectedCloseOn": "2017-02-30"}, "expectedCloseOn", "real calendar date"),
        ({"expectedCloseOn": "2017-02-03T23:00:00Z"}, "expectedCloseOn", "YYYY-MM-DD"),
        ({"probability": 101}, "probability", "less than or equal to 100"),
        ({"probability": 50.5}, "probability", "integer"),
        ({"ownerId": 0}, "ownerId", "greater than 0"),
        ({"owner": {"username": "a", "name": "b"}}, "owner", "exactly one"),
        ({"idempotencyKey": ""}, "idempotencyKey", "must not be blank"),
        ({"idempotencyKey": " "}, "idempotencyKey", "must not be blank"),
        ({"name": "a\x00b"}, "name", "must not contain control characters"),
        ({"partyId": 2**63, "party": None}, "partyId", "less than or equal to"),
        ({"idempotencyKey": "k" * 201}, "idempotencyKey", "at most 200 characters"),
        ({"idempotencyKey": "a\nb"}, "idempotencyKey", "printable"),
        ({"idempotencyKey": "k" * 201}, "idempotencyKey", "at most 200"),
        ({"fields": [{"value": 1}]}, "fields.0", "definitionId or definition"),
        ({"partyID": 3}, "partyID", "not a known job field"),
    ],
)
def test_refusal_names_the_field(
    change: dict[str, Any], field: str, fragment: str
) -> None:
    """Each broken rule is reported against the field that broke it."""
    data = {k: v for k, v in {**VALID, **change}.items() if v is not None}

    found = problems(data)

    assert any(f == field and fragment in m for f, m in found), found


def test_every_problem_is_reported_at_once() -> None:
    """A job with several problems lists all of them, not just the first."""
    found = problems({"name": "", "value": {"amount": "x"}})

    assert {f for f, _ in found} >= {"name", "party", "milestone", "value.amount"}


def test_non_object_is_refused() -> None:
    """A JSON value that is not an object is refused as a whole."""
    assert problems([1, 2]) == [("(job)", "must be a JSON object, got an array")]


def test_amount_keeps_its_digits() -> None:
    """Amounts stay exact decimals from input to canonical form."""
    job = parse_job({**VALID, "value": {"amount": Decimal("0.10"), "currency": "EUR"}})

    assert job.canonical()["value"] == {"amount": "0.10", "currency": "EUR"}


def test_canonical_round_trips() -> None:
    """A job's canonical form parses back to the same fingerprint."""
    job = parse_job(
        {
            **VALID,
            "value": {"amount": "12.5", "currency": "GBP"},
            "fields": [{"definition": "Source", "value": "web"}],
        }
    )

    assert parse_job(job.canonical()).fingerprint() == job.fingerprint()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "name",
                "partyId",
                "party",
                "milestone",
                "milestoneId",
                "value",
                "probability",
                "expectedCloseOn",
                "owner",
                "teamId",
                "fields",
                "idempotencyKey",
                "description",
            ]
        ),
        json_values,
    )
)
def test_any_payload_is_accepted_or_refused_cleanly(data: dict[str, Any]) -> None:
    """No payload makes validation fail with anything but a field-naming refusal."""
    try:
        parse_job(data)
    except JobInvalid as exc:
        assert exc.problems
        assert all(field and message for field, message in exc.problems)
