"""Request counters shown by ``GET /_sim/stats``."""

from collections import Counter


class RequestStats:
    """Counts API requests by route template and by status code."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        self.total = 0
        self.by_route: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.automation_fires = 0

    def record(self, route: str, status_code: int) -> None:
        """Count one answered request, e.g. ``("POST /opportunities", 201)``."""
        self.total += 1
        self.by_route[route] += 1
        self.by_status[status_code] += 1
