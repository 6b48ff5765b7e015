"""HubSpot CRM v3 contacts client: the seam the worker calls (CONTRACT §8, reference §3).

Errors split into `TransientError` (retry later, honouring `retry_after`) and `PermanentError`
(retrying cannot help); `outage` marks the failures that every other call would share. Every
request first waits on a `RequestBudget`, so the service stays under HubSpot's burst, search and
daily limits instead of learning them from 429s.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import quote

import httpx
import orjson

from syncgate.encoding import to_json_bytes
from syncgate.platforms.errors import PlatformError
from syncgate.platforms.usage import ApiUsage

if TYPE_CHECKING:
    from syncgate.config import Settings
    from syncgate.platforms.hubspot.oauth import HubSpotAuth

__all__ = [
    "BATCH_LIMIT",
    "BatchResult",
    "HubSpotClient",
    "HubSpotContact",
    "HubSpotError",
    "PermanentError",
    "RateWindow",
    "RequestBudget",
    "TransientError",
    "Window",
    "retry_after_seconds",
]

CONTACTS: Final = "/crm/v3/objects/contacts"
BATCH_LIMIT: Final = 100
# Search: "If the body of your request exceeds 3,000 characters, a 400 error will be returned."
SEARCH_BODY_LIMIT: Final = 3000
SEARCH_PAGE_SIZE: Final = 100
MAX_MESSAGE_CHARS: Final = 1000
_EXISTING_ID: Final = re.compile(r"Existing ID:\s*(\d+)")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# Per-input batch error categories that a later retry can fix; anything else is permanent.
_TRANSIENT_CATEGORIES: Final = frozenset(
    {"RATE_LIMIT", "RATE_LIMITS", "LOCKED", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT"}
)


class HubSpotError(PlatformError):
    """A HubSpot call failed; `message` holds no credentials and is safe to store."""


class TransientError(HubSpotError):
    """Retry later (429, 423, 477, 5xx, timeouts, network); wait `retry_after` s when set."""

    transient = True


class PermanentError(HubSpotError):
    """Retrying cannot help by itself: validation, permissions, credentials rejected after one
    renewal (those are an `outage`: they stop every call until someone fixes them)."""


@dataclass(frozen=True)
class HubSpotContact:
    """A contact as read from HubSpot; property values are strings or None."""

    id: str
    properties: dict[str, str | None]
    updated_at_ms: int
    archived: bool = False


@dataclass(frozen=True)
class BatchResult:
    """Outcome of one input of a batch write; `index` is its position in the caller's sequence."""

    index: int
    success: bool
    id: str | None = None
    message: str | None = None
    transient: bool = False
    # Set when a contact with this input's email already exists: link to it instead of creating.
    existing_id: str | None = None
    # Upsert only: HubSpot's `new` flag (True when the upsert created the contact).
    created: bool | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class RateWindow:
    """At most `limit` requests in any `seconds`: the start times of those still in the window,
    and a pause (e.g. after a 429). Plain data, so it can live in memory or in the database."""

    limit: int
    seconds: float
    sent: list[float] = field(default_factory=list)
    paused_until: float = 0.0

    def __post_init__(self) -> None:
        if self.limit < 1 or self.seconds <= 0:
            raise ValueError("a rate window needs a positive limit and duration")

    def reserve(self, now: float, count: int = 1) -> float:
        """Take `count` slots at `now` and return 0, or return how many seconds until that many
        are free."""
        if not 1 <= count <= self.limit:
            raise ValueError(f"a window of {self.limit} cannot reserve {count} slots at once")
        # The epsilon stops float rounding from leaving a slot "busy" for a few ulps forever.
        self.sent = [t for t in self.sent if t + self.seconds > now + 1e-9]
        wait = self.paused_until - now
        if (over := len(self.sent) + count - self.limit) > 0:
            wait = max(wait, sorted(self.sent)[over - 1] + self.seconds - now)
        if wait > 0:
            return wait
        self.sent += [now] * count
        return 0.0

    def pause(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)


class Window(Protocol):
    """A rate window the budget draws from: this process's own, or one shared by all workers."""

    limit: int  # requests in the window

    async def reserve(self, count: int = 1) -> float:
        """Take `count` slots now and return 0, or return how many seconds until they free."""

    async def pause(self, seconds: float) -> None:
        """Hold every request back for `seconds`."""


class LocalWindow:
    """A rate window kept in this process, on the budget's clock."""

    def __init__(self, limit: int, seconds: float, clock: Callable[[], float]) -> None:
        self.window = RateWindow(limit, seconds)
        self.limit = limit
        self._clock = clock

    async def reserve(self, count: int = 1) -> float:
        return self.window.reserve(self._clock(), count)

    async def pause(self, seconds: float) -> None:
        self.window.pause(self._clock() + max(seconds, 0.0))


class RequestBudget:
    """Client-side limiter: rolling burst window, search lane, daily cap, and 429 pauses.

    Defaults are safe for every tier (reference §3.6): 100 requests per rolling 10 s (the lowest
    burst limit; OAuth apps get 110, Pro/Enterprise 190), search 5 per second in its own lane, and
    250,000 requests per UTC day (the lowest daily limit). Waits up to `max_wait` seconds are
    slept through; a longer wait (a daily pause) raises `TransientError` so the caller reschedules.
    The burst window is this process's own unless `burst` is given: the worker passes one kept in
    the database, so that all workers together stay under HubSpot's limit (searches and the daily
    cap stay per process).
    """

    def __init__(
        self,
        per_window: int = 100,
        window_seconds: float = 10.0,
        search_per_second: int = 5,
        daily_limit: int | None = 250_000,
        max_wait: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        utcnow: Callable[[], datetime] = _utcnow,
        burst: Window | None = None,
    ) -> None:
        self._main: Window = burst or LocalWindow(per_window, window_seconds, clock)
        self._search = LocalWindow(search_per_second, 1.0, clock)
        # Callers in this process queue up in turn instead of all sleeping and racing.
        self._locks = {False: asyncio.Lock(), True: asyncio.Lock()}
        self._daily_limit = daily_limit
        self._max_wait = max_wait
        self._sleep = sleep
        self.utcnow = utcnow
        self._day: date | None = None
        self._day_count = 0

    @property
    def used_today(self) -> int:
        """Requests started since midnight UTC."""
        return self._day_count if self._day == self.utcnow().date() else 0

    async def acquire(self, *, search: bool = False, count: int = 1) -> None:
        """Wait for `count` free slots (taken together, as for calls sent at once); raise
        TransientError when that is more than `max_wait` away."""
        lane = self._search if search else self._main
        async with self._locks[search]:
            # More slots than the window holds are taken a window's worth at a time.
            while count > 0:
                part = min(count, lane.limit)
                await self._take(lane, part)
                count -= part

    async def _take(self, lane: Window, count: int) -> None:
        while True:
            now_utc = self.utcnow()
            if self._day != now_utc.date():
                self._day, self._day_count = now_utc.date(), 0
            if self._daily_limit is not None and self._day_count + count > self._daily_limit:
                raise TransientError(
                    "daily HubSpot request budget used up",
                    retry_after=_seconds_until(now_utc, _next_midnight(now_utc)),
                    outage=True,
                )
            wait = await lane.reserve(count)
            if wait <= 0:
                self._day_count += count
                return
            if wait > self._max_wait:
                # Only a pause HubSpot asked for is this long (its daily limit): an outage.
                raise TransientError(
                    f"HubSpot requests paused for {wait:.0f} s", retry_after=wait, outage=True
                )
            await self._sleep(wait)

    async def pause(self, seconds: float, *, search_only: bool = False) -> None:
        """Hold every request (or only searches) back for `seconds`, e.g. after a 429."""
        await self._search.pause(seconds)
        if not search_only:
            await self._main.pause(seconds)


class HubSpotClient:
    """Contacts reads and batch writes against HubSpot's CRM v3 API."""

    def __init__(
        self,
        auth: HubSpotAuth,
        http: httpx.AsyncClient,
        api_base: str,
        budget: RequestBudget | None = None,
    ) -> None:
        self._auth = auth
        self._http = http
        self._base = api_base.rstrip("/")
        self.budget = budget or RequestBudget()
        # The daily allowance, when HubSpot reports it (static-token apps get the headers).
        self.usage: ApiUsage | None = None

    @staticmethod
    def is_configured(settings: Settings) -> bool:
        """Whether credentials for HubSpot's API are set."""
        from syncgate.platforms.hubspot.oauth import HubSpotAuth

        return HubSpotAuth.is_configured(settings)

    @classmethod
    def from_settings(
        cls, settings: Settings, http: httpx.AsyncClient, budget: RequestBudget | None = None
    ) -> HubSpotClient | None:
        """A client from SYNCGATE_HUBSPOT_*, or None when no credentials are configured."""
        from syncgate.platforms.hubspot.oauth import (
            HubSpotAuth,  # oauth imports this module's errors
        )

        auth = HubSpotAuth.from_settings(settings, http)
        if auth is None:
            return None
        return cls(auth, http, str(settings.hubspot_api_base), budget)

    async def probe(self) -> None:
        """One cheap call: a single contact of the first page."""
        await self.list_contacts(["email"], limit=1)

    async def get_contact(
        self, contact_id: str, properties: Sequence[str]
    ) -> HubSpotContact | None:
        """One contact by record id, or None when HubSpot answers 404."""
        response = await self._request(
            "GET",
            f"{CONTACTS}/{quote(contact_id, safe='')}",
            params={"properties": ",".join(properties)},
            ok=(200, 404),
        )
        return None if response.status_code == 404 else _contact(_body(response))

    async def batch_read(
        self, ids: Sequence[str], properties: Sequence[str]
    ) -> list[HubSpotContact]:
        """Contacts by record id, 100 per call, the calls sent at once (their slots of the budget
        taken together); ids HubSpot does not know are left out."""
        unique = list(dict.fromkeys(ids))
        chunks = [unique[i : i + BATCH_LIMIT] for i in range(0, len(unique), BATCH_LIMIT)]
        await self.budget.acquire(count=len(chunks))
        answers = await asyncio.gather(
            *(self._read_chunk(chunk, properties) for chunk in chunks), return_exceptions=True
        )
        contacts: list[HubSpotContact] = []
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
            contacts += answer
        return contacts

    async def _read_chunk(
        self, ids: Sequence[str], properties: Sequence[str]
    ) -> list[HubSpotContact]:
        body = {"properties": list(properties), "inputs": [{"id": i} for i in ids]}
        response = await self._request(
            "POST", f"{CONTACTS}/batch/read", json_body=body, reserved=True
        )
        return [_contact(item) for item in _body(response).get("results") or []]

    async def search_by_emails(
        self, emails: Sequence[str], properties: Sequence[str]
    ) -> dict[str, HubSpotContact]:
        """Contacts whose primary email is one of `emails`, keyed by lower-cased email.

        The search index lags writes by a few seconds, so a miss does not prove absence; creation
        must still go through `batch_create`'s conflict handling or `batch_upsert_by_email`.
        """
        wanted = list(dict.fromkeys(e.strip().lower() for e in emails if e and e.strip()))
        props = list(dict.fromkeys([*properties, "email"]))
        found: dict[str, HubSpotContact] = {}
        for chunk in _email_chunks(wanted, props):
            after: str | None = None
            while True:
                body = _email_search(chunk, props, after)
                response = await self._request(
                    "POST", f"{CONTACTS}/search", json_body=body, search=True
                )
                data = _body(response)
                for item in data.get("results") or []:
                    contact = _contact(item)
                    email = (contact.properties.get("email") or "").lower()
                    if email in chunk:
                        found[email] = contact
                after = _next_after(data)
                if after is None:
                    break
        return found

    async def list_contacts(
        self, properties: Sequence[str], after: str | None = None, limit: int = 100
    ) -> tuple[list[HubSpotContact], str | None]:
        """One page of all contacts and the cursor of the next page (None on the last)."""
        if not 1 <= limit <= 100:
            raise ValueError("limit must be between 1 and 100")
        params = {"limit": str(limit), "properties": ",".join(properties)}
        if after:
            params["after"] = after
        data = _body(await self._request("GET", CONTACTS, params=params))
        return [_contact(item) for item in data.get("results") or []], _next_after(data)

    async def batch_create(self, inputs: Sequence[dict[str, str | None]]) -> list[BatchResult]:
        """Create contacts (≤100); an email that already exists comes back with `existing_id`.

        HubSpot rejects the whole call with 409 on the first existing email and names only that
        contact (reference §3.3, hubspot-api-python#51). So on 409 we read the named contact to
        find the input it belongs to, search once for the other inputs' emails (one round trip
        instead of one 409 each), drop those inputs and send the rest again: at most one extra
        call per conflict, and nothing is ever created twice. Repeated emails within `inputs` are
        sent once; the repeats report the first one's contact as `existing_id`.
        """
        _check_size(inputs)
        emails = [_email(props) for props in inputs]
        first: dict[str, int] = {}
        for index, email in enumerate(emails):
            if email:
                first.setdefault(email, index)
        pending = [i for i, e in enumerate(emails) if e is None or first[e] == i]
        payloads = [_write_input(i, props) for i, props in enumerate(inputs)]
        results = await self._write(
            "create", payloads, pending, emails, emails, _result_email, inputs, search=True
        )
        for index, email in enumerate(emails):
            if index not in results and email is not None:
                results[index] = _repeat_of(index, results[first[email]])
        return [results[i] for i in range(len(inputs))]

    async def batch_update(
        self, inputs: Sequence[tuple[str, dict[str, str | None]]]
    ) -> list[BatchResult]:
        """Update contacts by record id (≤100, ids unique); a taken email gets `existing_id`."""
        _check_size(inputs)
        ids = [contact_id for contact_id, _ in inputs]
        if len(set(ids)) != len(ids):
            raise ValueError("batch_update got the same contact id twice")
        sent = [props for _, props in inputs]
        payloads = [{**_write_input(i, p), "id": ids[i]} for i, p in enumerate(sent)]
        emails = [_email(props) for props in sent]
        pending = list(range(len(inputs)))
        results = await self._write(
            "update", payloads, pending, ids, emails, _result_id, sent, search=True
        )
        return [results[i] for i in pending]

    async def batch_upsert_by_email(
        self, inputs: Sequence[dict[str, str | None]]
    ) -> list[BatchResult]:
        """Create or update contacts keyed by email (≤100, emails present and unique)."""
        _check_size(inputs)
        emails = [_email(props) for props in inputs]
        keys = [e for e in emails if e is not None]
        if len(keys) != len(emails) or len(set(keys)) != len(keys):
            raise ValueError("batch_upsert_by_email needs a distinct email in every input")
        payloads = [
            {**_write_input(i, props), "id": keys[i], "idProperty": "email"}
            for i, props in enumerate(inputs)
        ]
        pending = list(range(len(inputs)))
        # No conflict search here: finding existing emails is what an upsert is for.
        results = await self._write(
            "upsert", payloads, pending, emails, emails, _result_email, inputs, search=False
        )
        return [results[i] for i in pending]

    async def _write(
        self,
        action: str,
        payloads: Sequence[Mapping[str, Any]],
        pending: list[int],
        keys: Sequence[str | None],
        emails: Sequence[str | None],
        result_key: Callable[[Mapping[str, Any]], str | None],
        sent: Sequence[Mapping[str, str | None]],
        *,
        search: bool,
    ) -> dict[int, BatchResult]:
        """Send a batch write, peeling off inputs named by 409s until HubSpot accepts the rest."""
        results: dict[int, BatchResult] = {}
        while pending:
            body = {"inputs": [payloads[i] for i in pending]}
            response = await self._request(
                "POST", f"{CONTACTS}/batch/{action}", json_body=body, ok=(200, 201, 207, 409)
            )
            if response.status_code != 409:
                return results | self._write_results(response, pending, keys, result_key, sent)
            conflicts = await self._conflicts(response, pending, keys, emails, search=search)
            search = False
            if not conflicts:
                text = self._detail(response)
                return results | {
                    i: BatchResult(i, False, message=text, transient=True) for i in pending
                }
            results |= conflicts
            pending = [i for i in pending if i not in conflicts]
        return results

    async def _conflicts(
        self,
        response: httpx.Response,
        pending: list[int],
        keys: Sequence[str | None],
        emails: Sequence[str | None],
        *,
        search: bool,
    ) -> dict[int, BatchResult]:
        owners: dict[str, str] = {}  # email -> id of the contact that already has it
        match = _EXISTING_ID.search(str(_body(response).get("message") or ""))
        if match:
            named = match.group(1)
            contact = await self.get_contact(named, ["email", "hs_additional_emails"])
            owners |= dict.fromkeys(_contact_emails(contact) if contact else (), named)
            if len(pending) == 1 and emails[pending[0]] not in owners:
                owners[emails[pending[0]] or ""] = named
        rest = [e for i in pending if (e := emails[i]) and e not in owners]
        if search and rest:
            hits = await self.search_by_emails(rest, ["email"])
            owners |= {email: contact.id for email, contact in hits.items()}
        found: dict[int, BatchResult] = {}
        for i in pending:
            owner = owners.get(emails[i] or "")
            if owner is not None and owner != keys[i]:
                text = f"Contact already exists. Existing ID: {owner}"
                found[i] = BatchResult(i, False, message=text, existing_id=owner)
        return found

    def _write_results(
        self,
        response: httpx.Response,
        pending: list[int],
        keys: Sequence[str | None],
        result_key: Callable[[Mapping[str, Any]], str | None],
        sent: Sequence[Mapping[str, str | None]],
    ) -> dict[int, BatchResult]:
        data = _body(response)
        by_key = {key.lower(): i for i in pending if (key := keys[i])}
        traces = {str(i): i for i in pending}
        results: dict[int, BatchResult] = {}
        leftovers: list[Mapping[str, Any]] = []
        for item in data.get("results") or []:
            index = traces.get(str(item.get("objectWriteTraceId")))
            if index is None:
                index = by_key.get((result_key(item) or "").lower())
            if index is None or index in results:
                leftovers.append(item)
            else:
                results[index] = _success(index, item)
        unattributed: list[BatchResult] = []
        for error in data.get("errors") or []:
            failure = self._item_error(error)
            context = error.get("context") or {}
            refs = [traces.get(t) for t in context.get("objectWriteTraceId") or []]
            refs += [by_key.get(str(k).lower()) for k in context.get("ids") or []]
            indices = [i for i in refs if i is not None and i not in results]
            if not indices:
                unattributed.append(failure)
            for index in indices:
                results[index] = _at(failure, index)
        # A result we cannot attribute is still a record HubSpot wrote: pair it with an input
        # whose values it echoes (else the next unclaimed one), so none is retried as a duplicate.
        for item in leftovers:
            unclaimed = [i for i in pending if i not in results]
            echoed = item.get("properties") or {}
            matching = [i for i in unclaimed if _echoes(echoed, sent[i])]
            if matching or unclaimed:
                index = (matching or unclaimed)[0]
                results[index] = _success(index, item)
        for index in pending:
            if index in results:
                continue
            if unattributed:
                results[index] = _at(unattributed[0], index, keep_existing=len(unattributed) == 1)
            else:
                text = "HubSpot returned no result for this input"
                results[index] = BatchResult(index, False, message=text, transient=True)
        return results

    def _item_error(self, error: Mapping[str, Any]) -> BatchResult:
        category = str(error.get("category") or "")
        message = self._auth.redact(str(error.get("message") or category or "error"))
        match = _EXISTING_ID.search(message)
        return BatchResult(
            -1,
            False,
            message=message[:MAX_MESSAGE_CHARS],
            transient=category in _TRANSIENT_CATEGORIES,
            existing_id=match.group(1) if match else None,
        )

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        search: bool = False,
        ok: tuple[int, ...] = (200, 201, 207),
        reserved: bool = False,
    ) -> httpx.Response:
        """One call, its slot of the budget taken first unless the caller `reserved` it."""
        renewed = False
        content = None if json_body is None else to_json_bytes(json_body)
        while True:
            if not reserved:
                await self.budget.acquire(search=search)
            reserved = False  # a call sent again after renewing the token takes a new slot
            token = await self._auth.token()
            headers = {"Authorization": f"Bearer {token}"}
            if content is not None:
                headers["Content-Type"] = "application/json"
            try:
                response = await self._http.request(
                    method, self._base + path, params=params, content=content, headers=headers
                )
            except httpx.TimeoutException:
                raise TransientError(f"HubSpot {method} {path} timed out", outage=True) from None
            except httpx.TransportError as error:
                raise TransientError(
                    f"HubSpot {method} {path} failed: {type(error).__name__}", outage=True
                ) from None
            if usage := _api_usage(response.headers):
                self.usage = usage
            status = response.status_code
            if status == 401:
                detail = self._detail(response)
                if not self._auth.renewable:
                    raise PermanentError(
                        f"HubSpot rejected the access token ({detail}); "
                        "replace SYNCGATE_HUBSPOT_ACCESS_TOKEN",
                        outage=True,
                    )
                if renewed:
                    raise PermanentError(
                        f"HubSpot rejected the access token even after renewal ({detail})",
                        outage=True,
                    )
                await self._auth.renew(token)
                renewed = True
                continue
            if status in ok:
                return response
            raise await self._failure(response, search=search)

    async def _failure(self, response: httpx.Response, *, search: bool) -> HubSpotError:
        status = response.status_code
        detail = self._detail(response)
        now = self.budget.utcnow()
        retry_after = retry_after_seconds(response.headers.get("Retry-After"), now)
        if status == 429:
            policy = str(_body(response).get("policyName") or "")
            if retry_after is None:
                retry_after = _rate_limit_wait(policy, response.headers, now, search=search)
            burst_or_daily = policy in ("DAILY", "TEN_SECONDLY_ROLLING")
            await self.budget.pause(retry_after, search_only=search and not burst_or_daily)
            return TransientError(
                f"HubSpot rate limit ({policy or 'unknown policy'}): {detail}",
                retry_after=retry_after,
                outage=policy == "DAILY",
            )
        if status == 423:
            # "Locks will last for 2 seconds ... include a delay of at least 2 seconds".
            return TransientError(f"HubSpot 423: {detail}", retry_after=max(retry_after or 0, 2.0))
        if status == 477 or status >= 500:
            return TransientError(
                f"HubSpot {status}: {detail}", retry_after=retry_after, outage=True
            )
        return PermanentError(f"HubSpot {status}: {detail}")

    def _detail(self, response: httpx.Response) -> str:
        body = _body(response)
        category = body.get("category") or body.get("errorType") or body.get("policyName")
        message = str(body.get("message") or response.reason_phrase or "no message")
        details = [
            str(e.get("message"))
            for e in body.get("errors") or []
            if isinstance(e, dict) and e.get("message") and str(e.get("message")) not in message
        ]
        text = "; ".join([message, *details])
        text = f"{category}: {text}" if category else text
        return self._auth.redact(text)[:MAX_MESSAGE_CHARS]


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay in seconds or an HTTP date)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or _utcnow())).total_seconds(), 0.0)


def _api_usage(headers: httpx.Headers) -> ApiUsage | None:
    allowed = headers.get("X-HubSpot-RateLimit-Daily", "")
    remaining = headers.get("X-HubSpot-RateLimit-Daily-Remaining", "")
    if not (allowed.isdigit() and remaining.isdigit()):
        return None
    return ApiUsage(max(int(allowed) - int(remaining), 0), int(allowed), _utcnow())


def _rate_limit_wait(policy: str, headers: httpx.Headers, now: datetime, *, search: bool) -> float:
    if policy == "DAILY":
        # The daily limit resets at midnight in the portal's time zone, which we do not know;
        # midnight in any zone falls on a UTC hour (or half hour), so probe once an hour.
        return _seconds_until(now, _next_hour(now))
    if search and policy != "TEN_SECONDLY_ROLLING":
        return 1.0
    interval = headers.get("X-HubSpot-RateLimit-Interval-Milliseconds", "")
    return int(interval) / 1000 if interval.isdigit() else 10.0


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = orjson.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _contact(data: Mapping[str, Any]) -> HubSpotContact:
    raw = data.get("properties") or {}
    properties = {str(k): None if v is None else str(v) for k, v in raw.items()}
    updated = data.get("updatedAt") or properties.get("lastmodifieddate")
    return HubSpotContact(
        id=str(data.get("id")),
        properties=properties,
        updated_at_ms=_epoch_ms(updated),
        archived=bool(data.get("archived", False)),
    )


def _epoch_ms(value: object) -> int:
    if isinstance(value, int | float):
        return int(value)
    if not isinstance(value, str) or not value:
        return 0
    if value.isdigit():
        return int(value)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return 0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    # Integer division of timedeltas is exact; float timestamps can be off by a millisecond.
    return (when - _EPOCH) // timedelta(milliseconds=1)


def _next_after(data: Mapping[str, Any]) -> str | None:
    after = ((data.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after not in (None, "") else None


def _email(properties: Mapping[str, str | None]) -> str | None:
    email = (properties.get("email") or "").strip().lower()
    return email or None


def _result_email(item: Mapping[str, Any]) -> str | None:
    email = (item.get("properties") or {}).get("email")
    return str(email).lower() if email else None


def _result_id(item: Mapping[str, Any]) -> str | None:
    return str(item.get("id"))


def _contact_emails(contact: HubSpotContact) -> set[str]:
    primary = contact.properties.get("email") or ""
    extra = (contact.properties.get("hs_additional_emails") or "").split(";")
    return {e.strip().lower() for e in [primary, *extra] if e.strip()}


def _write_input(index: int, properties: Mapping[str, str | None]) -> dict[str, Any]:
    # The trace id is the caller's index: 207 errors name it, so each error maps to its input.
    return {"properties": dict(properties), "objectWriteTraceId": str(index)}


def _check_size(inputs: Sequence[object]) -> None:
    if len(inputs) > BATCH_LIMIT:
        raise ValueError(f"HubSpot batches hold at most {BATCH_LIMIT} inputs, got {len(inputs)}")


def _at(result: BatchResult, index: int, *, keep_existing: bool = True) -> BatchResult:
    existing = result.existing_id if keep_existing else None
    return BatchResult(
        index, False, message=result.message, transient=result.transient, existing_id=existing
    )


def _success(index: int, item: Mapping[str, Any]) -> BatchResult:
    created = item.get("new")
    return BatchResult(
        index, True, id=str(item.get("id")), created=created if isinstance(created, bool) else None
    )


def _echoes(echoed: Mapping[str, Any], sent: Mapping[str, str | None]) -> bool:
    def norm(value: object) -> str:
        return str(value or "").strip().lower()

    return all(norm(echoed[k]) == norm(v) for k, v in sent.items() if k in echoed)


def _repeat_of(index: int, first: BatchResult) -> BatchResult:
    existing = first.id if first.success else first.existing_id
    if existing is None:
        return _at(first, index)
    text = f"Contact already exists. Existing ID: {existing}"
    return BatchResult(index, False, message=text, existing_id=existing)


def _email_search(chunk: Iterable[str], properties: list[str], after: str | None) -> dict[str, Any]:
    values = sorted(chunk)
    email_filter = {"propertyName": "email", "operator": "IN", "values": values}
    body: dict[str, Any] = {
        "filterGroups": [{"filters": [email_filter]}],
        "properties": properties,
        "limit": SEARCH_PAGE_SIZE,
    }
    if after is not None:
        body["after"] = after
    return body


def _email_chunks(emails: list[str], properties: list[str]) -> list[set[str]]:
    """Emails grouped so each search body stays under 3,000 characters and one page of results."""
    base = len(json.dumps(_email_search([], properties, "9" * 10)))
    chunks: list[set[str]] = []
    current: list[str] = []
    size = base
    for email in emails:
        extra = len(json.dumps(email)) + 2
        if current and (size + extra > SEARCH_BODY_LIMIT or len(current) >= SEARCH_PAGE_SIZE):
            chunks.append(set(current))
            current, size = [], base
        current.append(email)
        size += extra
    if current:
        chunks.append(set(current))
    return chunks


def _seconds_until(now: datetime, then: datetime) -> float:
    return max((then - now).total_seconds(), 1.0)


def _next_midnight(now: datetime) -> datetime:
    return datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def _next_hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
