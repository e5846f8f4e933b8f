"""Injected failures, switchable while the simulator runs.

Kinds:

- ``error``: answer ``status`` (default 503) without doing the work.
- ``latency``: sleep ``delay_s``, then handle normally.
- ``commit_late``: do the work, then sleep ``delay_s`` before answering,
  so a client with a short timeout never learns that the write happened.
- ``commit_502``: do the work, then answer 502 as a gateway would.

A rule may be narrowed by ``method`` and ``path`` (the path after
``/api/v2``; a trailing ``*`` makes it a prefix), fires with probability
``rate`` drawn from a seedable RNG, and stops after ``count`` fires.
"""

import random
from dataclasses import dataclass
from typing import Any, Literal

FaultKind = Literal["error", "latency", "commit_late", "commit_502"]

#: Every kind a fault rule may have.
FAULT_KINDS: tuple[FaultKind, ...] = ("error", "latency", "commit_late", "commit_502")
#: Status an ``error`` fault answers with unless told otherwise.
DEFAULT_ERROR_STATUS = 503
#: Seconds a ``latency`` or ``commit_late`` fault waits unless told otherwise.
DEFAULT_DELAY_S = 1.0


@dataclass
class FaultRule:
    """One fault rule and how often it has fired."""

    kind: FaultKind
    method: str | None = None
    path: str | None = None
    rate: float = 1.0
    count: int | None = None
    status: int = DEFAULT_ERROR_STATUS
    delay_s: float = DEFAULT_DELAY_S
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Tell whether the rule applies to a request and has fires left."""
        if self.count is not None and self.fired >= self.count:
            return False
        if self.method is not None and self.method != method:
            return False
        if self.path is None:
            return True
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])

        return path == self.path

    def as_json(self) -> dict[str, Any]:
        """Return the rule as the admin endpoint shows it."""
        return {
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "rate": self.rate,
            "count": self.count,
            "status": self.status,
            "delay_s": self.delay_s,
            "fired": self.fired,
        }


class FaultInjector:
    """Holds the active fault rules and picks the one a request meets."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self.fired_by_kind: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
        self._rng = random.Random()

    def replace(self, rules: list[FaultRule], seed: int | None = None) -> None:
        """Swap in a new rule list and reseed the RNG for repeatable runs."""
        self.rules = rules
        self._rng = random.Random(seed)

    def clear(self) -> None:
        """Remove every rule; fire counters are kept."""
        self.rules = []

    def reset_counters(self) -> None:
        """Zero the per-kind fire counters."""
        self.fired_by_kind = dict.fromkeys(FAULT_KINDS, 0)

    def pick(self, method: str, path: str) -> FaultRule | None:
        """Return the first rule that matches and wins its draw, counting it."""
        for rule in self.rules:
            if not rule.matches(method, path):
                continue
            if rule.rate < 1.0 and self._rng.random() >= rule.rate:
                continue
            rule.fired += 1
            self.fired_by_kind[rule.kind] += 1
            return rule

        return None


#: The fields of a fault rule's JSON form.
_FAULT_FIELDS = frozenset(
    {"kind", "method", "path", "rate", "count", "status", "delay_s"}
)


def parse_fault(raw: Any) -> FaultRule:
    """Build a rule from its JSON form.

    Raises:
        ValueError: The JSON does not describe a valid rule.
    """
    if not isinstance(raw, dict) or raw.get("kind") not in FAULT_KINDS:
        raise ValueError(f"Expected a fault with kind in {FAULT_KINDS}, got {raw!r}.")
    unknown = sorted(set(raw) - _FAULT_FIELDS)
    if unknown:
        raise ValueError(
            f"Unknown fault fields {unknown}; a fault takes {sorted(_FAULT_FIELDS)}."
        )

    method = raw.get("method")
    return FaultRule(
        kind=raw["kind"],
        method=method.upper() if isinstance(method, str) else None,
        path=raw.get("path"),
        rate=float(raw.get("rate", 1.0)),
        count=int(raw["count"]) if raw.get("count") is not None else None,
        status=int(raw.get("status", DEFAULT_ERROR_STATUS)),
        delay_s=float(raw.get("delay_s", DEFAULT_DELAY_S)),
    )
