"""The request guard: a pure ASGI middleware in front of every route.

- It reads the body before any route sees it, and answers 413 as soon as the body is known to
  be over its route class's limit: from Content-Length before reading anything, else while
  reading (chunked bodies too). Nothing is parsed before that.
- A client that goes away before its whole body arrived is counted and logged in one quiet
  line; the route never runs, so no traceback is written.
- Every refused answer (401, 403, 413, 429) is logged in one structured line with its reason
  and the client's address, never a credential or the query string.
"""

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncgate.errors import error_body
from syncgate.metrics import (
    CLIENT_DISCONNECTS,
    REFUSED_REQUESTS,
    REFUSED_STATUSES,
    WEBHOOK_EVENTS,
)
from syncgate.platforms.salesforce.outbound_message import soap_fault

log = logging.getLogger("syncgate.security")

_REFUSED_STATUSES = frozenset(int(status) for status in REFUSED_STATUSES)
_REASON = "refusal_reason"
_DEFAULT_REASONS = {
    401: "not authenticated",
    403: "forbidden",
    413: "body too large",
    429: "too many failed authentications",
}
_WEBHOOKS = "/webhooks/"
_SALESFORCE_WEBHOOK = "/webhooks/salesforce"
_CONSOLE = "/console"
_TOO_LARGE_PAGE = (
    '<!doctype html><html lang="en"><meta charset="utf-8"><title>Too large</title>'
    "<h1>Too large</h1><p>The form was larger than this console accepts ({limit} bytes). Go back"
    " and send less at a time.</p></html>"
)


def note_refusal(request: Request, reason: str) -> None:
    """The reason the log line of this request's refusal gives (never a credential)."""
    setattr(request.state, _REASON, reason)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _request_fields(scope: Scope) -> dict[str, Any]:
    # The path without its query string: Salesforce's `token` travels in the query string.
    return {"client": client_address(scope), "method": scope["method"], "path": scope["path"]}


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class RequestGuard:
    """Body limits per route class, quiet disconnects and one log line per refusal."""

    def __init__(self, app: ASGIApp, *, webhook_limit: int, api_limit: int) -> None:
        self.app = app
        self.webhook_limit = webhook_limit
        self.api_limit = api_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})

        async def send_logging_refusals(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in _REFUSED_STATUSES:
                _log_refusal(scope, message["status"])
            await send(message)

        limit = self.webhook_limit if scope["path"].startswith(_WEBHOOKS) else self.api_limit
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _answer_too_large(scope, send_logging_refusals, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                CLIENT_DISCONNECTS.inc()
                log.info(
                    "the client went away before sending its whole body",
                    extra={"fields": {**_request_fields(scope), "received_bytes": size}},
                )
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _answer_too_large(scope, send_logging_refusals, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # waits for the disconnect, as the server's would
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send_logging_refusals)


def _log_refusal(scope: Scope, status: int) -> None:
    reason = scope["state"].get(_REASON) or _DEFAULT_REASONS[status]
    REFUSED_REQUESTS.labels(str(status)).inc()
    log.warning(
        "request refused",
        extra={"fields": {"status": status, "reason": reason, **_request_fields(scope)}},
    )


async def _answer_too_large(scope: Scope, send: Send, limit: int) -> None:
    path: str = scope["path"]
    reason = f"body larger than {limit} bytes"
    scope["state"][_REASON] = reason
    if path == _SALESFORCE_WEBHOOK:
        body, content_type = soap_fault(reason), "text/xml; charset=utf-8"
    elif path == _CONSOLE or path.startswith(_CONSOLE + "/"):
        body, content_type = (
            _TOO_LARGE_PAGE.format(limit=limit).encode(),
            "text/html; charset=utf-8",
        )
    else:
        body = json.dumps(error_body("payload_too_large", reason)).encode()
        content_type = "application/json"
    if path.startswith(_WEBHOOKS):
        source = path.removeprefix(_WEBHOOKS)
        if source in ("hubspot", "salesforce"):
            WEBHOOK_EVENTS.labels(source, "rejected").inc()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is never read, so the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
