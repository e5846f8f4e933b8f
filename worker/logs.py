"""structlog set-up: one shape for every line, Celery's included.

Lines are JSON when the output is not a terminal and readable key=value
when it is. Secrets never reach a line: any field whose name looks like a
credential is masked before rendering.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

#: Field names whose values are never written out.
SECRET_FIELDS = frozenset({"token", "authorization", "api_token", "password", "secret"})


def _mask_secrets(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for name in event:
        if name.lower() in SECRET_FIELDS:
            event[name] = "***"
    return event


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Route structlog and the standard library through one renderer.

    Args:
        level: minimum level name, e.g. ``INFO``.
        fmt: ``json``, ``console`` or ``auto`` (console on a terminal).
    """
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if use_console
        else structlog.processors.JSONRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_secrets,
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
