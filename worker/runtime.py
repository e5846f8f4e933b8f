"""The per-process object graph: settings, connections and use cases.

Built on first use inside each process, after any fork, so that pool
children never share a socket with their parent (design note 15).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import redis

from worker.capsule import CapsuleClient
from worker.connections import connect_redis
from worker.creation import Creation
from worker.ledger import Ledger
from worker.parking import ParkingLot
from worker.ratebudget import RedisRateBudget, account_id
from worker.reconciliation import Reconciler
from worker.resolver import NameResolver
from worker.settings import Settings
from worker.verification import Verification


@dataclass(frozen=True)
class Runtime:
    """Everything a task needs, wired once per process."""

    settings: Settings
    redis: redis.Redis
    ledger: Ledger
    capsule: CapsuleClient
    resolver: NameResolver
    creation: Creation
    verification: Verification
    parking: ParkingLot


def build_runtime(settings: Settings) -> Runtime:
    """Wire a runtime for ``settings``; opens no connection yet."""
    client = connect_redis(settings.redis_url)
    ledger = Ledger(client, settings.key_prefix)
    budget = RedisRateBudget(
        client,
        settings.key_prefix,
        account_id(settings.require_token()),
        reserve=settings.rate_reserve,
        window_s=settings.rate_window_s,
        burst=settings.rate_burst,
        auth_recheck_s=settings.auth_recheck_s,
        max_inline_wait_s=settings.max_inline_wait_s,
    )
    capsule = CapsuleClient(settings, budget)
    resolver = NameResolver(
        client, capsule, settings.key_prefix, settings.lookup_cache_ttl_s
    )
    reconciler = Reconciler(capsule, resolver, settings.capsule_job_key_field)
    creation = Creation(
        ledger,
        resolver,
        capsule,
        reconciler,
        lease_s=settings.lease_s,
        max_attempts=settings.max_attempts,
    )
    verification = Verification(ledger, resolver, capsule)
    parking = ParkingLot(client, settings.key_prefix)
    return Runtime(
        settings, client, ledger, capsule, resolver, creation, verification, parking
    )


_current: tuple[int, Runtime] | None = None


def runtime() -> Runtime:
    """Return this process's runtime, building it after a fork."""
    global _current
    if _current is None or _current[0] != os.getpid():
        _current = (os.getpid(), build_runtime(Settings.from_env()))
    return _current[1]


def reset_runtime() -> None:
    """Forget the runtime so the next call builds a fresh one."""
    global _current
    _current = None
