"""oppsync: exactly-once creation of Capsule opportunities on Celery and Redis.

``celery -A worker worker`` finds the Celery application here; it is built on
first use so that importing the package (for the CLI or the job schema) needs
no configuration.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in {"app", "celery"}:
        from worker.celery_app import app

        return app
    raise AttributeError(f"module 'worker' has no attribute {name!r}")
