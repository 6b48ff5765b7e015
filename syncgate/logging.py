"""Structured JSON logs with context (event_id, contact_id, delivery_id) bound per task, and
one access line per HTTP request."""

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_context: ContextVar[dict[str, Any]] = ContextVar("log_context", default={})  # noqa: B039


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Attach key/values to every log record emitted inside the block."""
    token = _context.set({**_context.get(), **values})
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_context.get(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr at `level` (SYNCGATE_LOG_LEVEL) for syncgate and uvicorn."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    # Our lines name no source line, thread or process: records need not look them up (the
    # logging HOWTO's "Optimization"), a fifth of the cost of the line a worker logs per event.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Libraries speak only when something is wrong: one line per outbound request (httpx), the
    # plugin set-up and the dialect of every migration context, which /readyz opens (alembic).
    # A migration that runs is logged by syncgate.migrate instead.
    for name in ("httpx", "alembic"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # Access logs would carry ?token= query strings of Salesforce calls; we log requests ourselves.
    logging.getLogger("uvicorn.access").disabled = True


access_log = logging.getLogger("syncgate.access")
# Polled every few seconds by orchestrators and Prometheus: logged at debug level while they
# answer 2xx, so they do not drown the requests that matter.
PROBE_PATHS = frozenset({"/livez", "/readyz", "/metrics"})


class AccessLog:
    """One line per HTTP request: method, path (never the query string, which may carry a
    token), status and duration in ms. Plain ASGI, so the webhook intake pays little for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app fails before it answers

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            path: str = scope["path"]
            quiet = path in PROBE_PATHS and status < 300
            level = logging.DEBUG if quiet else logging.INFO
            if access_log.isEnabledFor(level):
                fields = {
                    "method": scope["method"],
                    "path": path,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                }
                access_log.log(
                    level,
                    "%s %s %s",
                    fields["method"],
                    path,
                    status,
                    extra={"fields": fields},
                )
