"""Redis connections, made per process (never shared across a fork)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis

from worker.errors import ConfigurationError


def connect_redis(url: str, timeout_s: float = 15.0) -> redis.Redis:
    """Return a Redis client for ``url`` that decodes replies to ``str``.

    ``timeout_s`` bounds each command (connecting: at most 5 s). ``rediss://``
    URLs verify the server certificate (redis-py's default is kept on
    purpose; there is no silent fallback to an unverified connection).
    """
    try:
        return _from_url(url, timeout_s)
    except ValueError as exc:
        raise ConfigurationError(f"REDIS_URL is not a Redis URL: {exc}") from exc


def _from_url(url: str, timeout_s: float) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=min(5.0, timeout_s),
        socket_timeout=timeout_s,
        health_check_interval=30,
        retry_on_timeout=timeout_s >= 5.0,
    )


def redacted(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{user}:***@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def eviction_risk(client: redis.Redis) -> str | None:
    """Return a warning when Redis may evict ledger keys, else None.

    Any ``allkeys-*`` policy may drop durable keys under memory pressure
    (design note 20); ``volatile-*`` only touches keys with a TTL.
    """
    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy", "")
    except redis.ResponseError:
        return None  # managed Redis may forbid CONFIG; nothing to check
    if str(policy).startswith("allkeys"):
        return (
            f"Redis maxmemory-policy is {policy!r}: under memory pressure it may "
            "evict ledger and dead-letter keys; use 'noeviction' or 'volatile-lru'."
        )
    return None
