"""The fake platforms of tests/fakes, served in the benchmark process and instrumented.

``fake_platform("salesforce")`` / ``fake_platform("hubspot")`` serve a fresh ``FakeSalesforce`` /
``FakeHubSpot`` with ``FakeServer`` in a thread of this process, behind an ASGI wrapper
(``CreationHook``) that stamps every record a successful create call made, by lower-case email
(wall clock, when the fake starts its answer, i.e. after the record is stored), and adds up the
time the fake spent answering each kind of call.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from fakes.hubspot import FakeHubSpot, _Contact, create_hubspot_app
from fakes.salesforce import FakeSalesforce, create_salesforce_app
from fakes.server import FakeServer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SALESFORCE_ORG_ID = "00D5g000004SyncEAA"
PORTAL_ID = 62515  # what loadgen.py puts in every HubSpot event


@dataclass
class Arrivals:
    """When each record (by lower-case email) was created in the fake, and time spent
    answering each kind of call."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    by_email: dict[str, float] = field(default_factory=dict)
    busy_s: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def count(self) -> int:
        with self.lock:
            return len(self.by_email)

    def first_and_last(self) -> tuple[float | None, float | None]:
        with self.lock:
            stamps = self.by_email.values()
            return min(stamps, default=None), max(stamps, default=None)


@dataclass(frozen=True)
class Tap:
    """What a platform's create calls look like and how to read the created emails."""

    create_path: re.Pattern[str]  # POST to a matching path may create records
    created: Callable[[str, bytes, bytes, int], list[str]]  # (path, request, answer, status)
    kinds: tuple[tuple[str, str], ...]  # (kind, path substring): the first match names a call


class CreationHook:
    """ASGI wrapper around a fake: stamps every record a successful create call made."""

    def __init__(self, app: ASGIApp, arrivals: Arrivals, tap: Tap) -> None:
        self.app = app
        self.arrivals = arrivals
        self.tap = tap

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        kind = next((k for k, part in self.tap.kinds if part in path), "other")
        began = time.perf_counter()
        is_create = scope["method"] == "POST" and self.tap.create_path.search(path) is not None
        request = bytearray()
        answer = bytearray()
        status = 0
        stamp = 0.0

        async def tapped_receive() -> Message:
            message = await receive()
            if is_create and message["type"] == "http.request":
                request.extend(message.get("body", b""))
            return message

        async def tapped_send(message: Message) -> None:
            nonlocal status, stamp
            if message["type"] == "http.response.start":
                status, stamp = int(message["status"]), time.time()
            elif is_create and message["type"] == "http.response.body":
                answer.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, tapped_receive, tapped_send)
        created = self.tap.created(path, bytes(request), bytes(answer), status) if is_create else []
        with self.arrivals.lock:
            self.arrivals.busy_s[kind] = (
                self.arrivals.busy_s.get(kind, 0.0) + time.perf_counter() - began
            )
            self.arrivals.calls[kind] = self.arrivals.calls.get(kind, 0) + 1
            for email in created:
                self.arrivals.by_email.setdefault(email, stamp)


def _json_pair(request: bytes, answer: bytes, status: int) -> tuple[object, object] | None:
    if status >= 300:
        return None
    try:
        return json.loads(request), json.loads(answer)
    except ValueError:
        return None


def salesforce_created(_path: str, request: bytes, answer: bytes, status: int) -> list[str]:
    """Emails of the Leads/Contacts a single-record or composite create call made."""
    pair = _json_pair(request, answer, status)
    if pair is None:
        return []
    sent, results = pair
    if isinstance(sent, dict) and "records" in sent and isinstance(results, list):
        pairs = list(zip(sent["records"], results, strict=False))
    else:
        pairs = [(sent, results)]
    return [
        str(record["Email"]).lower()
        for record, result in pairs
        if isinstance(record, dict)
        and isinstance(result, dict)
        and result.get("success")
        and record.get("Email")
    ]


def hubspot_created(path: str, request: bytes, answer: bytes, status: int) -> list[str]:
    """Emails of the contacts a batch create (every result) or upsert (``new``) call made.
    A 207 answer carries the inputs that succeeded in ``results``."""
    pair = _json_pair(request, answer, status)
    if pair is None or not isinstance(pair[1], dict):
        return []
    upsert = path.endswith("/upsert")
    emails = []
    for result in pair[1].get("results") or []:
        if not isinstance(result, dict) or (upsert and not result.get("new")):
            continue
        email = (result.get("properties") or {}).get("email")
        if email:
            emails.append(str(email).lower())
    return emails


SALESFORCE_TAP = Tap(
    re.compile(r"/services/data/v[\d.]+/(composite/sobjects|sobjects/(Lead|Contact))$"),
    salesforce_created,
    (("query", "/query"), ("write", "/sobjects")),
)
HUBSPOT_TAP = Tap(
    re.compile(r"/crm/v3/objects/contacts/batch/(create|upsert)$"),
    hubspot_created,
    (("search", "/search"), ("read", "/batch/read"), ("write", "/batch/"), ("read", "/crm/")),
)


class IndexedFakeHubSpot(FakeHubSpot):
    """FakeHubSpot with its email lookups (every upsert input and every conflict check) served
    from an index instead of a scan of all contacts: ≈ 6 ms per lookup at 10,000 contacts,
    which would put seconds of the fake's own time into every burst's drain.

    Sound for the benchmark's use: every contact is made by ``_create`` and every email change
    goes through ``_update`` (both keep the index), and a hit is checked against the contacts
    the fake is looking in (a batch that failed as a whole leaves entries pointing nowhere).
    """

    def __init__(self, *, portal_id: int) -> None:
        super().__init__(portal_id=portal_id, shuffle_batch_results=False)
        self._email_index: dict[str, str] = {}

    def _by_unique(
        self, contacts: Mapping[str, _Contact], prop: str, value: str
    ) -> _Contact | None:
        if prop != "email":
            return super()._by_unique(contacts, prop, value)
        contact = contacts.get(self._email_index.get(value.lower(), ""))
        stored = contact.properties.get("email") if contact is not None else None
        if contact is None or contact.archived or (stored or "").lower() != value.lower():
            return None
        return contact

    def _create(self, contacts: dict[str, _Contact], values: Mapping[str, str | None]) -> _Contact:
        return self._remember(super()._create(contacts, values))

    def _update(
        self, contacts: dict[str, _Contact], contact: _Contact, values: Mapping[str, str | None]
    ) -> _Contact:
        return self._remember(super()._update(contacts, contact, values))

    def _remember(self, contact: _Contact) -> _Contact:
        email = contact.properties.get("email")
        if email:
            self._email_index[email.lower()] = contact.id
        return contact


@dataclass
class Instrumented:
    """A fake platform being served: its URL, arrivals, and what the service needs to use it."""

    platform: str  # "salesforce" or "hubspot"
    server: FakeServer
    arrivals: Arrivals
    env: dict[str, str]  # SYNCGATE_* settings pointing the service at this fake
    writes: Callable[[], list[int]]  # records (inputs) in each write call, in order
    emails: Callable[[], list[str]]  # lower-case email of every live record, one per record

    def duplicates(self) -> int:
        """Records beyond the first with the same email (a record created twice)."""
        return sum(n - 1 for n in Counter(self.emails()).values() if n > 1)


@contextmanager
def fake_platform(platform: str) -> Iterator[Instrumented]:
    """A fresh fake Salesforce or HubSpot, served until the block ends."""
    if platform == "salesforce":
        salesforce = FakeSalesforce(org_id=SALESFORCE_ORG_ID)
        app, tap = create_salesforce_app(salesforce), SALESFORCE_TAP
        env = {
            "SYNCGATE_SALESFORCE_LOGIN_URL": "",  # the server's URL, once it is known
            "SYNCGATE_SALESFORCE_CLIENT_ID": salesforce.client_id,
            "SYNCGATE_SALESFORCE_CLIENT_SECRET": salesforce.client_secret,
        }
        url_key = "SYNCGATE_SALESFORCE_LOGIN_URL"

        def writes() -> list[int]:
            return salesforce.records_per_write_call

        def emails() -> list[str]:
            records = salesforce.records.values()
            return [str(r.get("Email") or "").lower() for r in records if r.get("Email")]

    elif platform == "hubspot":
        hubspot = IndexedFakeHubSpot(portal_id=PORTAL_ID)
        app, tap = create_hubspot_app(hubspot), HUBSPOT_TAP
        env = {
            "SYNCGATE_HUBSPOT_API_BASE": "",
            "SYNCGATE_HUBSPOT_ACCESS_TOKEN": hubspot.access_token or "",
        }
        url_key = "SYNCGATE_HUBSPOT_API_BASE"

        def writes() -> list[int]:
            return hubspot.inputs_per_write_call

        def emails() -> list[str]:
            return [p["email"].lower() for p in hubspot.contacts.values() if p.get("email")]

    else:
        raise ValueError(f"unknown platform {platform!r}")
    arrivals = Arrivals()
    server = FakeServer(CreationHook(app, arrivals, tap))
    server.start()
    try:
        yield Instrumented(platform, server, arrivals, env | {url_key: server.url}, writes, emails)
    finally:
        server.stop()
