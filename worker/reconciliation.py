"""Finding an opportunity that an earlier, ambiguous create may have made.

Capsule has no idempotency key. When a create timed out, lost its
connection after sending, or got a 5xx, the opportunity may exist. Before
the job may post again, it looks:

- **marker** (strong): when the tenant has a text custom field for the job
  key (``CAPSULE_JOB_KEY_FIELD``), every create writes the key into it and
  this search filters on that field. Exact, whatever else the record says.
- **name** (weaker): otherwise, the party's opportunities with the job's name
  created since the first attempt was sent (less a clock-skew margin). Two
  jobs for the same party with the same name inside that window are
  indistinguishable, and a user renaming the record defeats it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from worker.capsule import CapsuleClient
from worker.resolver import MAX_PAGES, PAGE_SIZE, NameResolver

log = structlog.get_logger(__name__)

#: Clock-skew margin when comparing Capsule's createdAt with ours, seconds.
SKEW_MARGIN_S = 120


class Reconciler:
    """Looks for an opportunity that a job may already have created.

    Args:
        capsule: the Capsule client.
        resolver: resolves the marker field's name to its id.
        marker_field: the job-key custom field, by id or name; empty for none.
    """

    def __init__(
        self, capsule: CapsuleClient, resolver: NameResolver, marker_field: str
    ) -> None:
        self._capsule = capsule
        self._resolver = resolver
        self._marker_field = marker_field
        self._marker_id: int | None = None

    @property
    def marker_definition_id(self) -> int | None:
        """The custom field that carries the job key, when configured.

        Resolved on first use (a Capsule lookup, then cached).
        """
        if self._marker_field and self._marker_id is None:
            self._marker_id = self._resolver.marker_definition_id(self._marker_field)
        return self._marker_id

    def find(
        self, key: str, name: str, party_id: int, since_ms: int | None
    ) -> int | None:
        """Return the id of the opportunity ``key`` created, or None.

        Safe to retry (reads only). Several matches adopt the oldest and log
        ``reconcile_found_several``.
        """
        if self.marker_definition_id is not None:
            found = self._by_marker(key)
        else:
            found = self._by_name(name, party_id, since_ms)
        if len(found) > 1:
            log.warning("reconcile_found_several", opportunity_ids=found)
        return min(found) if found else None

    def _by_marker(self, key: str) -> list[int]:
        condition = {
            "field": f"custom:{self._marker_id}",
            "operator": "is",
            "value": key,
        }
        body = self._capsule.search(
            "opportunities/filters/results", {"filter": {"conditions": [condition]}}
        )
        return [int(o["id"]) for o in _list(body)]

    def _by_name(self, name: str, party_id: int, since_ms: int | None) -> list[int]:
        earliest_s = (since_ms or 0) / 1000 - SKEW_MARGIN_S
        found = []
        for page in range(1, MAX_PAGES + 1):
            body = self._capsule.get(
                f"parties/{party_id}/opportunities",
                {"page": page, "perPage": PAGE_SIZE},
            )
            batch = _list(body)
            found += [
                int(o["id"])
                for o in batch
                if o.get("name") == name and _created_s(o) >= earliest_s
            ]
            if len(batch) < PAGE_SIZE:
                break
        return found


def _list(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        return []
    items = body.get("opportunities", [])
    return [o for o in items if isinstance(o, dict) and "id" in o]


def _created_s(opportunity: dict[str, Any]) -> float:
    raw = str(opportunity.get("createdAt", ""))
    try:
        return (
            datetime.fromisoformat(raw.replace("Z", "+00:00"))
            .astimezone(UTC)
            .timestamp()
        )
    except ValueError:
        return float("inf")  # unknown time: keep it as a candidate
