"""structlog set-up: JSON lines on stdout (pretty on a terminal), one event per line."""

from __future__ import annotations

import logging
import sys

import msgspec
import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure(level: str = "info", *, json: bool | None = None, stream=None) -> None:
    stream = stream or sys.stdout
    if json is None:
        json = not stream.isatty()
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if json:
        processors = [*shared, structlog.processors.dict_tracebacks,
                      structlog.processors.JSONRenderer(
                          serializer=lambda ev, default: msgspec.json.encode(ev, enc_hook=default))]
        factory = structlog.BytesLoggerFactory(stream.buffer if hasattr(stream, "buffer") else stream)
    else:
        processors = [*shared, structlog.dev.ConsoleRenderer()]
        factory = structlog.PrintLoggerFactory(stream)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
