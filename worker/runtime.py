"""The per-process object graph: settings, connections and use cases.

Built on first use inside each process, after any fork, so that pool
children never share a socket with their parent (design note 15). Each
Capsule account gets its own client, rate budget, name cache and use
cases, built the first time a job names it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import redis

from worker.capsule import CapsuleClient
from worker.connections import connect_redis
from worker.creation import Creation
from worker.errors import JobInvalid
from worker.ledger import Ledger
from worker.parking import ParkingLot
from worker.ratebudget import LocalRateBudget, RedisRateBudget, account_id
from worker.reconciliation import Reconciler
from worker.resolver import NameResolver
from worker.settings import DEFAULT_ACCOUNT, Settings
from worker.verification import Verification


@dataclass(frozen=True)
class Account:
    """Everything that talks to one Capsule account."""

    name: str
    capsule: CapsuleClient
    resolver: NameResolver
    creation: Creation
    verification: Verification


@dataclass
class Runtime:
    """Everything a task needs, wired once per process."""

    settings: Settings
    redis: redis.Redis
    ledger: Ledger
    parking: ParkingLot
    _accounts: dict[str, Account] = field(default_factory=dict)

    def account(self, name: str | None) -> Account:
        """Return the named Capsule account (the default one for None).

        Raises:
            JobInvalid: no token is configured for that account.
        """
        name = name or DEFAULT_ACCOUNT
        if name not in self._accounts:
            self._accounts[name] = self._build_account(name)
        return self._accounts[name]

    def _build_account(self, name: str) -> Account:
        tokens = self.settings.account_tokens()
        if name not in tokens:
            raise JobInvalid(
                [("account", f"no Capsule account {name!r} is configured")]
            )
        settings = self.settings.with_overrides(capsule_api_token=tokens[name])
        budget: RedisRateBudget | LocalRateBudget = RedisRateBudget(
            self.redis,
            settings.key_prefix,
            account_id(tokens[name]),
            reserve=settings.rate_reserve,
            window_s=settings.rate_window_s,
            burst=settings.rate_burst,
            auth_recheck_s=settings.auth_recheck_s,
            max_inline_wait_s=settings.max_inline_wait_s,
        )
        if settings.rate_budget == "off":
            budget = LocalRateBudget(settings.auth_recheck_s)
        capsule = CapsuleClient(settings, budget)
        cache_prefix = f"{settings.key_prefix}:{account_id(tokens[name])}"
        resolver = NameResolver(
            self.redis, capsule, cache_prefix, settings.lookup_cache_ttl_s
        )
        reconciler = Reconciler(capsule, resolver, settings.capsule_job_key_field)
        creation = Creation(
            self.ledger,
            resolver,
            capsule,
            reconciler,
            lease_s=settings.lease_s,
            max_attempts=settings.max_attempts,
        )
        verification = Verification(self.ledger, resolver, capsule)
        return Account(name, capsule, resolver, creation, verification)


def build_runtime(settings: Settings) -> Runtime:
    """Wire a runtime for ``settings``; opens no connection yet."""
    client = connect_redis(settings.redis_url)
    ledger = Ledger(client, settings.key_prefix)
    return Runtime(settings, client, ledger, ParkingLot(client, settings.key_prefix))


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
