"""Opportunities kept in memory with the indexes the handlers need.

Indexes (all kept in step by :class:`OpportunityStore`):

- ``by id``: insertion-ordered, so listing pages come out oldest first;
- ``by party id``: for ``GET /parties/{id}/opportunities``;
- ``by (field definition id, value text)``: for filters such as
  ``custom:12 is job-42``, which clients use to find an opportunity by an
  external key after a write whose answer was lost.
"""

from collections.abc import Iterable

from .model import FieldValue, Opportunity

FieldKey = tuple[int, str]


def field_key(definition_id: int, value: object) -> FieldKey:
    """Return the index key of a custom field value."""
    return (definition_id, str(value))


class OpportunityStore:
    """Stores opportunities by id, by party and by custom field value."""

    def __init__(self) -> None:
        self._by_id: dict[int, Opportunity] = {}
        self._by_party: dict[int, dict[int, None]] = {}
        self._by_field: dict[FieldKey, dict[int, None]] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, opportunity_id: int) -> Opportunity | None:
        """Return the opportunity with this id, if any."""
        return self._by_id.get(opportunity_id)

    def all(self) -> list[Opportunity]:
        """Return every opportunity, oldest first."""
        return list(self._by_id.values())

    def add(self, opportunity: Opportunity) -> None:
        """Store a new opportunity and index it."""
        self._by_id[opportunity.id] = opportunity
        self._by_party.setdefault(opportunity.party_id, {})[opportunity.id] = None
        self._index_fields(opportunity.id, opportunity.fields)

    def remove(self, opportunity_id: int) -> Opportunity | None:
        """Forget an opportunity; return it, or None when it was absent."""
        opportunity = self._by_id.pop(opportunity_id, None)
        if opportunity is None:
            return None

        self._by_party.get(opportunity.party_id, {}).pop(opportunity_id, None)
        self._unindex_fields(opportunity_id, opportunity.fields)
        return opportunity

    def clear(self) -> None:
        """Forget every opportunity."""
        self._by_id.clear()
        self._by_party.clear()
        self._by_field.clear()

    def move_party(self, opportunity: Opportunity, party_id: int) -> None:
        """Re-link an opportunity to another party."""
        self._by_party.get(opportunity.party_id, {}).pop(opportunity.id, None)
        opportunity.party_id = party_id
        self._by_party.setdefault(party_id, {})[opportunity.id] = None

    def replace_fields(
        self, opportunity: Opportunity, fields: list[FieldValue]
    ) -> None:
        """Give an opportunity a new list of field values."""
        self._unindex_fields(opportunity.id, opportunity.fields)
        opportunity.fields = fields
        self._index_fields(opportunity.id, fields)

    def ids_for_party(self, party_id: int) -> list[int]:
        """Return the ids of the party's opportunities, oldest first."""
        return list(self._by_party.get(party_id, {}))

    def ids_with_field(self, definition_id: int, value: object) -> list[int]:
        """Return the ids whose field ``definition_id`` equals ``value``."""
        return list(self._by_field.get(field_key(definition_id, value), {}))

    def _index_fields(self, opportunity_id: int, fields: Iterable[FieldValue]) -> None:
        for item in fields:
            key = field_key(item.definition_id, item.value)
            self._by_field.setdefault(key, {})[opportunity_id] = None

    def _unindex_fields(
        self, opportunity_id: int, fields: Iterable[FieldValue]
    ) -> None:
        for item in fields:
            key = field_key(item.definition_id, item.value)
            self._by_field.get(key, {}).pop(opportunity_id, None)
