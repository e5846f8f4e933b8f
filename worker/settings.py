"""The one reader of the process environment.

Every tunable of oppsync is a field of :class:`Settings`, read once by
:meth:`Settings.from_env` and frozen afterwards. Nothing else in the code base
looks at ``os.environ``; pass a ``Settings`` instead.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from worker.errors import ConfigurationError

#: The account a job uses when it names none (token: CAPSULE_API_TOKEN).
DEFAULT_ACCOUNT = "default"
#: An HTTP header name (RFC 9110 token characters).
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
#: Capsule's public v2 base URL.
CAPSULE_DEFAULT_URL = "https://api.capsulecrm.com/api/v2"


@dataclass(frozen=True)
class Settings:
    """Frozen configuration, one field per environment variable.

    Times carry their unit in the name. The token is kept out of ``repr`` so
    that a settings object can be logged without leaking it.
    """

    capsule_api_url: str = CAPSULE_DEFAULT_URL
    capsule_api_token: str = field(default="", repr=False)
    capsule_accounts: str = field(default="", repr=False)
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "oppsync"
    capsule_job_key_field: str = ""
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    request_deadline_s: float = 30.0
    verify_delay_s: float = 2.0
    max_attempts: int = 8
    max_worker_losses: int = 3
    job_deadline_s: float = 24 * 3600.0
    backoff_min_s: float = 2.0
    backoff_factor: float = 2.0
    backoff_max_s: float = 120.0
    max_countdown_s: float = 300.0
    rate_reserve: int = 0
    rate_window_s: float = 3600.0
    rate_burst: float = 0.05
    auth_recheck_s: float = 60.0
    rate_budget: str = "shared"
    celery_rate_limit: str = ""
    max_inline_wait_s: float = 5.0
    lookup_cache_ttl_s: int = 600
    lease_s: int = 120
    task_time_limit_s: int = 150
    visibility_timeout_s: int = 3600
    finished_retention_s: int = 30 * 24 * 3600
    sweep_interval_s: float = 15.0
    sweep_stale_s: float = 0.0
    ready_file: str = ""
    log_format: str = "auto"
    log_level: str = "INFO"
    ingest_tokens: str = field(default="", repr=False)
    ingest_signing_secret: str = field(default="", repr=False)
    ingest_signature_header: str = "X-Oppsync-Signature"
    ingest_require_signature: bool = False
    ingest_max_body_bytes: int = 1_048_576
    ingest_max_jobs: int = 500
    ingest_body_timeout_s: float = 30.0
    ingest_host: str = "127.0.0.1"
    ingest_port: int = 8080
    maps_dir: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: the process environment).

        Raises:
            ConfigurationError: a variable holds a value of the wrong type.
        """
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, default in _defaults().items():
            raw = source.get(env_name(name))
            if raw:
                values[name] = _coerce(name, raw, default)
        settings = cls(**values)
        settings.check_values()
        return settings

    def account_tokens(self) -> dict[str, str]:
        """Return every configured account's token by account name.

        ``CAPSULE_ACCOUNTS`` is a JSON object of further accounts, e.g.
        ``{"eu": "token-1", "us": "token-2"}``; the default account uses
        ``CAPSULE_API_TOKEN``.

        Raises:
            ConfigurationError: ``CAPSULE_ACCOUNTS`` is not such an object.
        """
        tokens = (
            {DEFAULT_ACCOUNT: self.capsule_api_token} if self.capsule_api_token else {}
        )
        if not self.capsule_accounts:
            return tokens
        try:
            extra = json.loads(self.capsule_accounts)
        except ValueError:
            extra = None
        if not isinstance(extra, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in extra.items()
        ):
            raise ConfigurationError(
                "CAPSULE_ACCOUNTS must be a JSON object of account name to token, "
                'e.g. {"eu": "..."} (its content is not shown here).'
            )
        return {**tokens, **extra}

    def ingest_token_list(self) -> list[str]:
        """Return the bearer tokens ``oppsync serve`` accepts
        (``OPPSYNC_INGEST_TOKENS``, comma-separated; blanks ignored)."""
        return [t.strip() for t in self.ingest_tokens.split(",") if t.strip()]

    def check_ingest(self) -> None:
        """Refuse to serve HTTP ingest without any way to authenticate.

        Raises:
            ConfigurationError: no token and no signing secret, or a
                signature is required but no secret is set.
        """
        if not self.ingest_token_list() and not self.ingest_signing_secret:
            raise ConfigurationError(
                "oppsync serve needs credentials for its clients: set "
                "OPPSYNC_INGEST_TOKENS (comma-separated bearer tokens) or "
                "OPPSYNC_INGEST_SIGNING_SECRET (HMAC-SHA256 of the body)."
            )
        if self.ingest_max_jobs < 1 or self.ingest_max_body_bytes < 1:
            raise ConfigurationError(
                "OPPSYNC_INGEST_MAX_JOBS and OPPSYNC_INGEST_MAX_BODY_BYTES must "
                "be at least 1."
            )
        if not _HEADER_NAME.fullmatch(self.ingest_signature_header.strip()):
            raise ConfigurationError(
                "OPPSYNC_INGEST_SIGNATURE_HEADER must be an HTTP header name "
                f"(letters, digits, '-'), got {self.ingest_signature_header!r}."
            )
        if self.ingest_require_signature and not self.ingest_signing_secret:
            raise ConfigurationError(
                "OPPSYNC_INGEST_REQUIRE_SIGNATURE is on but "
                "OPPSYNC_INGEST_SIGNING_SECRET is not set."
            )

    def check_values(self) -> None:
        """Refuse negative times and counts, and malformed accounts.

        Raises:
            ConfigurationError: naming the variable.
        """
        self.account_tokens()
        if self.rate_budget not in ("shared", "off"):
            raise ConfigurationError(
                "OPPSYNC_RATE_BUDGET must be 'shared' or 'off', "
                f"got {self.rate_budget!r}."
            )
        for name, value in vars(self).items():
            if isinstance(value, int | float) and value < 0:
                raise ConfigurationError(
                    f"{env_name(name)} must not be negative, got {value}."
                )

    @property
    def consumer_stall_s(self) -> float:
        """Seconds waiting work may go unconsumed before the watchdog
        reconnects the consumer: longer than any task can run."""
        return self.task_time_limit_s + 30.0

    @property
    def stale_after_s(self) -> float:
        """Seconds after which an unfinished job untouched is presumed lost:
        longer than any countdown plus any task run (unless set)."""
        if self.sweep_stale_s > 0:
            return self.sweep_stale_s
        return self.max_countdown_s + self.task_time_limit_s + 60

    def to_env(self) -> dict[str, str]:
        """Return environment variables that rebuild these settings in a
        child process (the token included: pass it only to processes you
        start yourself)."""
        return {
            env_name(name): str(getattr(self, name))
            for name in self.__dataclass_fields__
        }

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with ``changes`` applied (settings stay frozen)."""
        return replace(self, **changes)

    def require_token(self) -> str:
        """Return the Capsule token, or raise when none is configured.

        Raises:
            ConfigurationError: ``CAPSULE_API_TOKEN`` is empty.
        """
        if not self.capsule_api_token:
            raise ConfigurationError(
                "CAPSULE_API_TOKEN is not set; oppsync needs a Capsule personal "
                "access token or OAuth token to talk to Capsule."
            )
        return self.capsule_api_token

    def check_broker_bounds(self) -> None:
        """Refuse configurations where a message could outlive its visibility.

        The Redis transport redelivers any message held longer than the
        visibility timeout, so the largest in-broker wait plus the longest
        task must stay well below it (design notes 1 and 2).

        Raises:
            ConfigurationError: the bound is not met.
        """
        worst_s = self.max_countdown_s + self.task_time_limit_s + self.verify_delay_s
        if worst_s * 2 > self.visibility_timeout_s:
            raise ConfigurationError(
                f"max countdown ({self.max_countdown_s:g} s) plus task time limit "
                f"({self.task_time_limit_s} s) must be under half the Redis "
                f"visibility timeout ({self.visibility_timeout_s} s); lower "
                "OPPSYNC_MAX_COUNTDOWN_S or OPPSYNC_TASK_TIME_LIMIT_S, or raise "
                "OPPSYNC_VISIBILITY_TIMEOUT_S."
            )
        if self.lease_s > self.max_countdown_s:
            raise ConfigurationError(
                f"the job lease ({self.lease_s} s) must not exceed the largest "
                f"countdown ({self.max_countdown_s:g} s): a worker waiting for a "
                "lease would otherwise have to be parked."
            )
        if self.lease_s <= self.request_deadline_s:
            raise ConfigurationError(
                f"the job lease ({self.lease_s} s) must outlast one Capsule "
                f"request ({self.request_deadline_s:g} s)."
            )


def env_name(field_name: str) -> str:
    """Return the environment variable that sets ``field_name``.

    Capsule and Redis connection settings keep their conventional names
    (``CAPSULE_API_TOKEN``, ``REDIS_URL``); everything else is prefixed.
    """
    if field_name.startswith(("capsule_", "redis_")):
        return field_name.upper()
    return f"OPPSYNC_{field_name.upper()}"


def _defaults() -> dict[str, Any]:
    return {name: f.default for name, f in Settings.__dataclass_fields__.items()}


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _boolean(name: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word not in _TRUE | _FALSE:
        raise ConfigurationError(
            f"{env_name(name)} must be true or false (also 1/0, yes/no, "
            f"on/off), got {raw!r}."
        )
    return word in _TRUE


def _coerce(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            return _boolean(name, raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as exc:
        kind = "an integer" if isinstance(default, int) else "a number"
        raise ConfigurationError(
            f"{env_name(name)} must be {kind}, got {raw!r}."
        ) from exc
    return raw
