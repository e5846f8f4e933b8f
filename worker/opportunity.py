"""Building Capsule opportunity bodies and reading owner and team back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from worker.job import Job
from worker.resolver import Resolved


def create_body(
    job: Job, resolved: Resolved, key: str, marker_definition_id: int | None
) -> dict[str, Any]:
    """Return the ``POST /opportunities`` body for a resolved job.

    The job key goes into the marker field when one is configured, so that
    an ambiguous create can be found again.
    """
    body: dict[str, Any] = {
        "name": job.name,
        "party": {"id": resolved.party_id},
        "milestone": {"id": resolved.milestone_id},
    }
    if job.description is not None:
        body["description"] = job.description
    if job.value is not None:
        body["value"] = {
            "amount": Decimal(job.value.amount),
            "currency": job.value.currency,
        }
    if job.expected_close_on is not None:
        body["expectedCloseOn"] = job.expected_close_on.isoformat()
    if job.probability is not None:
        body["probability"] = job.probability
    if resolved.owner_id is not None:
        body["owner"] = {"id": resolved.owner_id}
    if resolved.team_id is not None:
        body["team"] = {"id": resolved.team_id}
    fields = [{"definition": {"id": d}, "value": v} for d, v in resolved.fields]
    if marker_definition_id is not None:
        fields.append({"definition": {"id": marker_definition_id}, "value": key})
    if fields:
        body["fields"] = fields
    return {"opportunity": body}


def owner_and_team(opportunity: dict[str, Any]) -> tuple[int | None, int | None]:
    """Return the ids of an opportunity's owner and team (None when unset)."""
    return _ref_id(opportunity.get("owner")), _ref_id(opportunity.get("team"))


def _ref_id(ref: Any) -> int | None:
    if isinstance(ref, dict) and ref.get("id") is not None:
        return int(ref["id"])
    return None
