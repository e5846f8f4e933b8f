"""A liveness check on the work a worker actually consumes.

Celery workers on Redis have been seen to log a broker reconnect, or fail
an acknowledgement while Redis restarts, and then never take another
message (design note 5). The watchdog runs in the worker's main process:
when messages wait in the queue but the worker has received none for
longer than any task can run, it logs ``consumer_stalled`` and shuts the
worker down (a warm shutdown, then a hard exit if that hangs), so that its
supervisor (compose's restart policy, systemd, a Procfile runner) starts a
fresh one. An in-process reconnect is not enough: after a failed
acknowledgement the consumer's prefetch accounting can stay full.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import redis
import structlog

log = structlog.get_logger(__name__)

#: Seconds between two checks.
CHECK_EVERY_S = 2.0
#: Seconds a warm shutdown may take before the process exits hard.
HARD_EXIT_AFTER_S = 30.0
#: Exit status of a hard exit (EX_TEMPFAIL: try again).
HARD_EXIT_STATUS = 75


class ConsumerWatchdog:
    """Stops a worker whose consumer stopped taking waiting work.

    Args:
        client: a Redis connection of the worker's own.
        queue_key: the Redis list holding the worker's waiting messages.
        stall_s: how long waiting work may go unconsumed, in seconds.
    """

    def __init__(self, client: redis.Redis, queue_key: str, stall_s: float) -> None:
        self._redis = client
        self._queue_key = queue_key
        self._stall_s = stall_s
        self._last_received = time.monotonic()
        self._stopped = threading.Event()

    def note_received(self) -> None:
        """Record that a message was received (Celery's ``task_received``)."""
        self._last_received = time.monotonic()

    def start(self) -> None:
        """Check in a daemon thread until :meth:`stop`."""
        thread = threading.Thread(target=self._watch, name="oppsync-watchdog")
        thread.daemon = True
        thread.start()

    def stop(self) -> None:
        """End the checks."""
        self._stopped.set()

    def _watch(self) -> None:
        while not self._stopped.wait(CHECK_EVERY_S):
            if self._is_stalled():
                log.error(
                    "consumer_stalled",
                    idle_s=round(self._idle_s()),
                    queue=self._queue_key,
                )
                self._shut_down()
                return

    def _is_stalled(self) -> bool:
        if self._idle_s() < self._stall_s:
            return False
        try:
            return int(self._redis.llen(self._queue_key)) > 0
        except (redis.ConnectionError, redis.TimeoutError):
            return False  # Redis itself is away: nothing to restart yet

    def _idle_s(self) -> float:
        return time.monotonic() - self._last_received

    def _shut_down(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(HARD_EXIT_AFTER_S)  # the process is normally gone by now
        os._exit(HARD_EXIT_STATUS)
