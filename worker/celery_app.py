"""The Celery application: JSON only, late acks, prefetch 1, bounded waits.

Start a worker the usual way::

    celery -A worker worker --loglevel INFO
"""

from __future__ import annotations

import os
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from celery import Celery, signals

from worker.connections import connect_redis, eviction_risk, redacted
from worker.errors import ConfigurationError
from worker.logs import configure_logging
from worker.runtime import reset_runtime
from worker.settings import Settings
from worker.watchdog import ConsumerWatchdog

log = structlog.get_logger(__name__)

#: Wire names of the tasks; producers send these, so they never change.
CREATE_TASK = "oppsync.create_opportunity"
VERIFY_TASK = "oppsync.verify_opportunity"
SWEEP_TASK = "oppsync.sweep"


def create_app(settings: Settings | None = None) -> Celery:
    """Return a Celery app configured from ``settings`` (default: env)."""
    settings = settings or Settings.from_env()
    app = Celery("oppsync", include=["tasks.opportunity"])
    app.conf.update(celery_config(settings))
    return app


def celery_config(settings: Settings) -> dict[str, Any]:
    """Return the Celery settings oppsync relies on, with their reasons."""
    config: dict[str, Any] = {
        "broker_url": settings.redis_url,
        # A prefix keeps separate deployments (and the demo) apart in one Redis.
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout_s,
            "global_keyprefix": f"{settings.key_prefix}:celery:",
        },
        "broker_connection_retry_on_startup": True,
        "task_default_queue": settings.key_prefix,
        # JSON only: pickle would run code from whoever can write to Redis.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # The ledger holds every outcome; Celery results would only fill Redis.
        "task_ignore_result": True,
        "result_backend": None,
        # Redelivery instead of loss when a worker dies mid-task.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": settings.task_time_limit_s,
        "task_soft_time_limit": max(
            settings.task_time_limit_s - 10, settings.task_time_limit_s * 0.8
        ),
        "worker_hijack_root_logger": False,
        # Budgets live in Redis (ratebudget); Celery's per-worker limiter and
        # remote-control mailbox only cost a poll per message.
        "worker_disable_rate_limits": True,
        "worker_enable_remote_control": False,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "beat_schedule": {
            "oppsync-sweep": {
                "task": SWEEP_TASK,
                "schedule": settings.sweep_interval_s,
            },
        },
    }
    if settings.celery_rate_limit:
        # Celery's own limiter, per worker and per task type; only for
        # comparison with the shared budget (it knows nothing of Capsule).
        config["worker_disable_rate_limits"] = False
        config["task_annotations"] = {"*": {"rate_limit": settings.celery_rate_limit}}
    if settings.redis_url.startswith("rediss://"):
        config["broker_use_ssl"] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    return config


def worker_command(
    queue: str,
    *,
    pool: str = "prefork",
    concurrency: int = 4,
    hostname: str = "oppsync@%h",
    loglevel: str = "INFO",
    beat_schedule: str | None = None,
) -> list[str]:
    """Return the command that starts a worker on ``queue`` with this
    interpreter (for the demo, tests and benchmarks)."""
    command = [
        sys.executable, "-m", "celery", "-A", "worker", "worker",
        "--pool", pool, "--concurrency", str(concurrency), "--queues", queue,
        "--hostname", hostname, "--without-gossip", "--without-mingle",
        "--loglevel", loglevel,
    ]  # fmt: skip
    if beat_schedule is not None:
        command += ["--beat", "--schedule", beat_schedule]
    return command


@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)


@signals.worker_init.connect
def _check_worker(**_: Any) -> None:
    """Refuse to start on unsafe bounds; warn about risky Redis settings."""
    try:
        settings = Settings.from_env()
        # worker_init can come before setup_logging: configure first so
        # that these lines have the shape of every other.
        configure_logging(settings.log_level, settings.log_format)
        settings.check_broker_bounds()
        if not settings.account_tokens():
            settings.require_token()
    except ConfigurationError as exc:
        # Celery logs and swallows exceptions from signal receivers; only an
        # exit stops the worker.
        log.error("worker_refused_to_start", reason=str(exc))
        raise SystemExit(2) from exc
    warning = eviction_risk(connect_redis(settings.redis_url))
    if warning:
        log.warning("redis_eviction_risk", detail=warning)
    log.info(
        "worker_configured",
        redis_url=redacted(settings.redis_url),
        capsule_api_url=settings.capsule_api_url,
        key_prefix=settings.key_prefix,
        marker_field=settings.capsule_job_key_field or None,
    )


_watchdog: ConsumerWatchdog | None = None


@signals.worker_ready.connect
def _announce_ready(**_: Any) -> None:
    """Start the consumer watchdog; touch ``OPPSYNC_READY_FILE``."""
    global _watchdog
    settings = Settings.from_env()
    queue_key = f"{settings.key_prefix}:celery:{settings.key_prefix}"
    _watchdog = ConsumerWatchdog(
        connect_redis(settings.redis_url), queue_key, settings.consumer_stall_s
    )
    _watchdog.start()
    if settings.ready_file:
        Path(settings.ready_file).write_text(str(os.getpid()))


@signals.task_received.connect
def _note_received(**_: Any) -> None:
    if _watchdog is not None:
        _watchdog.note_received()


@signals.worker_shutting_down.connect
def _stop_watchdog(**_: Any) -> None:
    if _watchdog is not None:
        _watchdog.stop()


@signals.worker_process_init.connect
def _fresh_process(**_: Any) -> None:
    reset_runtime()


_app: Celery | None = None

if TYPE_CHECKING:
    app: Celery  # provided by __getattr__ below


def __getattr__(name: str) -> Any:
    """Build the module's ``app`` on first use, so that importing this module
    (for ``create_app`` or the task names) reads no configuration."""
    global _app
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _app is None:
        _app = create_app()
    return _app
