"""The verify step: the opportunity really has the owner and team asked for.

Tenant automation may change owner and team after Capsule answered the
create, so this step reads the record itself, some seconds later. When owner
or team differ from the job, one PUT carries **both**: Capsule clears the
team when a PUT names only the owner (reference §2.3), and a PUT does not
re-fire milestone automation. One read afterwards confirms the repair.

When the job named only one of the two, the other is kept as Capsule has it
if that still makes a valid pair, and cleared otherwise (an owner must
belong to the team).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker.capsule import CapsuleClient
from worker.errors import CapsuleUnavailable
from worker.job import parse_job
from worker.ledger import Ledger, now_ms
from worker.opportunity import owner_and_team
from worker.resolver import NameResolver


@dataclass(frozen=True)
class Wanted:
    """The owner and team a job asked for (None: not asked)."""

    owner_id: int | None
    team_id: int | None

    def is_met_by(self, owner_id: int | None, team_id: int | None) -> bool:
        """Return whether an opportunity's owner and team satisfy the job."""
        owner_ok = self.owner_id is None or self.owner_id == owner_id
        team_ok = self.team_id is None or self.team_id == team_id
        return owner_ok and team_ok


class Verification:
    """Runs the verify step for one job; see the module docstring."""

    def __init__(self, ledger: Ledger, resolver: NameResolver, capsule: CapsuleClient):
        self._ledger = ledger
        self._resolver = resolver
        self._capsule = capsule

    def run(self, key: str, opportunity_id: int) -> str | None:
        """Verify, and repair if needed, the job's opportunity.

        Idempotent: a job already finished, or a message naming another
        opportunity than the ledger's, does nothing.

        Returns:
            ``verified`` or ``repaired``, or None when there was nothing to do.

        Raises:
            TransientError: retry later (no state changed).
            PermanentError: e.g. the opportunity was deleted (404) or the
                repair was refused (422).
        """
        record = self._ledger.get(key)
        if record is None or record.state != "created":
            return None
        if record.opportunity_id != opportunity_id:
            return None
        wanted = Wanted(*self._resolver.resolve_people(parse_job(record.payload)))
        current = self._read(opportunity_id)
        if wanted.is_met_by(*owner_and_team(current)):
            final = "repaired" if record.repair_sent else "verified"
        else:
            self._repair(key, opportunity_id, wanted, current)
            final = "repaired"
        self._ledger.complete(key, opportunity_id, final)
        return final

    def _read(self, opportunity_id: int) -> dict[str, Any]:
        body = self._capsule.get(f"opportunities/{opportunity_id}")
        opportunity: dict[str, Any] = body["opportunity"]
        return opportunity

    def _repair(
        self, key: str, opportunity_id: int, wanted: Wanted, current: dict[str, Any]
    ) -> None:
        body = self._repair_body(wanted, *owner_and_team(current))
        self._ledger.note(key, repairSentAt=now_ms())
        self._capsule.put(f"opportunities/{opportunity_id}", {"opportunity": body})
        confirmed = self._read(opportunity_id)
        if not wanted.is_met_by(*owner_and_team(confirmed)):
            raise CapsuleUnavailable(
                f"opportunity {opportunity_id} still has owner/team "
                f"{owner_and_team(confirmed)} after the repair; will check again"
            )

    def _repair_body(
        self, wanted: Wanted, owner_id: int | None, team_id: int | None
    ) -> dict[str, Any]:
        owner = wanted.owner_id if wanted.owner_id is not None else owner_id
        team = wanted.team_id if wanted.team_id is not None else team_id
        if (
            owner is not None
            and team is not None
            and not self._resolver.is_member(owner, team)
        ):
            if wanted.team_id is None:
                team = None
            else:
                owner = None
        return {"owner": _ref(owner), "team": _ref(team)}


def _ref(entity_id: int | None) -> dict[str, int] | None:
    return None if entity_id is None else {"id": entity_id}
