"""What the hostile-input defences cost a request, against a bare baseline in the same run.

1. The request guard (`syncgate/security/guard.py`) around a bare ASGI app that reads the body
   and answers, against the bare app alone: µs per request of a 1-event HubSpot webhook.
2. Parsing Outbound Messages: the verbatim reference message, a real-shaped megabyte
   (100 Notifications of 60 fields) and the dearest message the parser's caps let through, in
   CPU ms each.

    .venv/bin/python bench/guard.py
"""

import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.reference import SALESFORCE_OUTBOUND_MESSAGE  # noqa: E402

from syncgate.platforms.salesforce.outbound_message import (  # noqa: E402
    MalformedMessage,
    parse_outbound_message,
)
from syncgate.security.guard import RequestGuard  # noqa: E402

BODY = (
    b'[{"eventId":1030198139,"subscriptionId":4578255,"portalId":242711451,"appId":19635961,'
    b'"occurredAt":1769081993375,"subscriptionType":"contact.creation","attemptNumber":0,'
    b'"objectId":267448862446,"changeFlag":"CREATED","changeSource":"CRM_UI"}]'
)
SCOPE: Scope = {
    "type": "http",
    "method": "POST",
    "path": "/webhooks/hubspot",
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))],
    "client": ("127.0.0.1", 40000),
}
REQUESTS = 20_000
ROUNDS = 7


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b'{"accepted":1,"duplicates":0}'})


async def _receive() -> Message:
    return {"type": "http.request", "body": BODY, "more_body": False}


async def _send(_: Message) -> None:
    pass


async def microseconds_per_request(app: ASGIApp) -> float:
    started = time.perf_counter()
    for _ in range(REQUESTS):
        await app(dict(SCOPE), _receive, _send)
    return (time.perf_counter() - started) / REQUESTS * 1e6


async def guard_overhead() -> None:
    guarded = RequestGuard(bare, webhook_limit=1 << 20, api_limit=1 << 19)
    rounds: dict[str, list[float]] = {"bare": [], "guarded": []}
    for _ in range(ROUNDS):  # interleaved, so that drift of the machine hits both alike
        rounds["bare"].append(await microseconds_per_request(bare))
        rounds["guarded"].append(await microseconds_per_request(guarded))
    bare_us, guarded_us = (statistics.median(rounds[name]) for name in ("bare", "guarded"))
    print(f"request guard: bare ASGI app {bare_us:.1f} µs/request, guarded {guarded_us:.1f}")
    print(f"  overhead {guarded_us - bare_us:.1f} µs per request (median of {ROUNDS} rounds)")


def _message(notifications: int, fields: int, junk: int = 0, valid: bool = True) -> bytes:
    values = "".join(f"<sf:Field{n}__c>value number {n}</sf:Field{n}__c>" for n in range(fields))
    body = "".join(
        f"<Notification><Id>04l1I{n:013d}</Id>"
        '<sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"<sf:Id>{f'00Q5g{n:013d}' if valid or n else 'not-an-id'}</sf:Id>{values}"
        "</sObject></Notification>"
        for n in range(notifications)
    )
    return (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        "<OrganizationId>00D5g000004SyncEAA</OrganizationId>"
        + "<b/>" * junk
        + body
        + "</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


def parse_costs() -> None:
    messages = {
        "reference message (2 Notifications)": SALESFORCE_OUTBOUND_MESSAGE.encode(),
        "100 Notifications of 60 fields": _message(100, 60),
        "dearest within the caps (100 Notifications of 199 fields, 9,990 other elements)": _message(
            100, 198, junk=9_990, valid=False
        ),
    }
    for name, body in messages.items():
        cpu = []
        for _ in range(ROUNDS):
            started = time.process_time()
            with contextlib.suppress(MalformedMessage):
                parse_outbound_message(body)
            cpu.append(time.process_time() - started)
        print(f"parse {name}: {len(body):,} bytes, {statistics.median(cpu) * 1000:.1f} ms CPU")


if __name__ == "__main__":
    asyncio.run(guard_overhead())
    parse_costs()
