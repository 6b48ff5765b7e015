"""A fake HubSpot portal: the OAuth token endpoint and the CRM v3 contact calls syncgate makes.

Behaviour follows reference/hubspot.md §3: string property values, ``createdate`` /
``lastmodifieddate`` / ``hs_object_id`` always returned, batch limit 100, 409 ``Contact already
exists. Existing ID: <id>`` (a batch create fails as a whole and names only the first conflict),
207 multi-status for missing ids and for inputs carrying ``objectWriteTraceId``, search with
filterGroups (limits enforced, optional index lag), list paging, the documented 401 and 429
bodies, and 30-minute OAuth tokens next to a static bearer token.

    hs = FakeHubSpot()
    with running(create_hubspot_app(hs)) as server:
        ...  # SYNCGATE_HUBSPOT_API_BASE=server.url, SYNCGATE_HUBSPOT_ACCESS_TOKEN=hs.access_token
"""

from __future__ import annotations

import json
import random
import re
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from ._common import ASGIApp, FakePlatform, FaultMiddleware, FaultRule, parse_json

BATCH_LIMIT = 100
LIST_LIMIT = 100
SEARCH_PAGE_LIMIT = 200
SEARCH_RESULT_LIMIT = 10_000
SEARCH_BODY_LIMIT = 3_000
READ_ONLY = frozenset({"hs_object_id", "createdate", "lastmodifieddate"})
ALWAYS_RETURNED = ("createdate", "hs_object_id", "lastmodifieddate")
DEFAULT_READ_PROPERTIES = ("email", "firstname", "lastname")
SEARCH_QUERY_PROPERTIES = ("email", "firstname", "lastname", "phone", "company")
ENUMERATIONS: dict[str, tuple[str, ...]] = {
    "lifecyclestage": (
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    ),
    "hs_lead_status": (
        "NEW",
        "OPEN",
        "IN_PROGRESS",
        "OPEN_DEAL",
        "UNQUALIFIED",
        "ATTEMPTED_TO_CONTACT",
        "CONNECTED",
        "BAD_TIMING",
    ),
}
DEFAULT_PROPERTIES = frozenset(
    {
        "email",
        "firstname",
        "lastname",
        "salutation",
        "phone",
        "mobilephone",
        "fax",
        "company",
        "jobtitle",
        "website",
        "address",
        "city",
        "state",
        "zip",
        "country",
        "industry",
        "annualrevenue",
        "numemployees",
        "lifecyclestage",
        "hs_lead_status",
        "hubspot_owner_id",
        "hs_language",
        "date_of_birth",
        "message",
        "hs_email_optout",
        "hs_additional_emails",
    }
    | READ_ONLY
)
AUTH_FAILED = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def _correlation() -> str:
    return str(uuid.uuid4())


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    """HubSpot's ``Error`` schema: status, message, correlationId, category (+ extras)."""
    return {
        "status": "error",
        "message": message,
        "correlationId": _correlation(),
        "category": category,
        **extra,
    }


def rate_limit_body(policy: str = "TEN_SECONDLY_ROLLING") -> dict[str, Any]:
    """The documented 429 body for the ``DAILY`` or ``TEN_SECONDLY_ROLLING`` policy."""
    body: dict[str, Any] = {
        "status": "error",
        "message": f"You have reached your {'daily' if policy == 'DAILY' else policy.lower()} "
        "limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": _correlation(),
        "policyName": policy,
    }
    if policy == "DAILY":
        body["requestId"] = _correlation()
    else:
        body["groupName"] = "publicapi:private-app-api-calls-ten-secondly:62515"
    return body


def format_timestamp(moment: datetime) -> str:
    """HubSpot's ISO form with milliseconds and ``Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class _HsError:
    """One failure: rendered as the whole answer, or as one ``errors`` item of a 207."""

    status: int
    category: str
    message: str
    context: Mapping[str, list[str]] = field(default_factory=dict)
    errors: tuple[Mapping[str, Any], ...] = ()

    def body(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.context:
            extra["context"] = dict(self.context)
        if self.errors:
            extra["errors"] = list(self.errors)
        return error_body(self.message, self.category, **extra)

    def item(self, trace_id: str | None = None) -> dict[str, Any]:
        context = dict(self.context)
        if trace_id is not None:
            context["objectWriteTraceId"] = [trace_id]
        item: dict[str, Any] = {
            "status": "error",
            "category": self.category,
            "message": self.message,
        }
        if context:
            item["context"] = context
        if self.errors:
            item["errors"] = list(self.errors)
        return item


class _InputFailedError(Exception):
    def __init__(self, error: _HsError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass
class ContactRule:
    """A rejection set up by a test (e.g. a property validation HubSpot would refuse)."""

    predicate: Callable[[dict[str, str | None]], bool]
    error: _HsError
    operations: frozenset[str]
    remaining: int | None
    hits: int = 0


@dataclass
class _Contact:
    id: str
    properties: dict[str, str]
    created: datetime
    updated: datetime
    archived: bool = False
    # Search sees snapshots that become visible after the index lag: (visible_at, properties).
    index: list[tuple[float, dict[str, str], datetime]] = field(default_factory=list)


class FakeHubSpot(FakePlatform):
    """State of one fake portal; serve it with ``create_hubspot_app(fake)``.

    ``access_token``: a static (private-app / static-auth) bearer token, or None for OAuth only.
    ``token_ttl``: lifetime of OAuth access tokens (``expires_in``), 1800 s like HubSpot.
    ``lowercase_emails``: HubSpot stores email addresses in lower case.
    ``shuffle_batch_results``: batch results come back in no particular order, as on HubSpot.
    ``search_lag``: seconds before a created/updated contact shows (as changed) in search.
    ``burst_limit`` / ``daily_limit``: enforce the 10-second and daily limits (429 + headers);
    ``burst_window`` shortens the 10 seconds for quick tests.
    """

    token_path = "/oauth/v1/token"

    def __init__(
        self,
        access_token: str | None = "hs-static-token",
        client_id: str = "hs-client-id",
        client_secret: str = "hs-client-secret",
        refresh_token: str | None = "hs-refresh-token",
        *,
        portal_id: int = 62515,
        token_ttl: int = 1800,
        lowercase_emails: bool = True,
        shuffle_batch_results: bool = True,
        search_lag: float = 0.0,
        burst_limit: int | None = None,
        burst_window: float = 10.0,
        daily_limit: int | None = None,
        extra_properties: Iterable[str] = (),
        unique_properties: Iterable[str] = (),
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.access_token = access_token
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.portal_id = portal_id
        self.token_ttl = token_ttl
        self.lowercase_emails = lowercase_emails
        self.shuffle_batch_results = shuffle_batch_results
        self.search_lag = search_lag
        self.burst_limit = burst_limit
        self.burst_window = burst_window
        self.daily_limit = daily_limit
        self.properties = set(DEFAULT_PROPERTIES) | set(extra_properties)
        self.unique_properties = {"email", *unique_properties}
        self.properties |= self.unique_properties
        self._rng = random.Random(seed)
        self._contacts: dict[str, _Contact] = {}
        self._next_id = 51_000_000_001
        self._tokens: dict[str, float] = {}  # OAuth access token → expiry (epoch seconds)
        self._rules: list[ContactRule] = []
        self._burst: deque[float] = deque()
        self._daily_used = 0
        self._last_time = datetime(2000, 1, 1, tzinfo=UTC)

    # -- tokens ----------------------------------------------------------------------------------

    def issue_token(self) -> str:
        """A valid OAuth access token, as the refresh grant would return."""
        token = "C" + secrets.token_urlsafe(90)
        with self.lock:
            self._tokens[token] = time.time() + self.token_ttl
        return token

    def expire_tokens(self) -> None:
        """Let every OAuth access token expire now (static tokens are unaffected)."""
        with self.lock:
            now = time.time()
            self._tokens = {t: min(exp, now - 1) for t, exp in self._tokens.items()}

    def revoke_refresh_token(self) -> None:
        """Make the refresh grant fail with ``BAD_REFRESH_TOKEN``."""
        with self.lock:
            self.refresh_token = None

    # -- seeding and inspection ------------------------------------------------------------------

    def define_property(self, name: str, *, unique: bool = False) -> None:
        """Create a custom contact property (values are strings)."""
        with self.lock:
            self.properties.add(name)
            if unique:
                self.unique_properties.add(name)

    def add_contact(self, properties: Mapping[str, Any] | None = None, /, **more: Any) -> str:
        """Create a contact directly (as a user would); returns its id. Emails must be unique."""
        values = {**(properties or {}), **more}
        with self.lock:
            normalized, error = self._normalize(values)
            if error:
                raise ValueError(error.message)
            clash = self._conflict(self._contacts, None, normalized)
            if clash:
                raise ValueError(clash.message)
            contact = self._create(self._contacts, normalized)
            return contact.id

    def update_contact(
        self, contact_id: str, properties: Mapping[str, Any] | None = None, /, **more: Any
    ) -> None:
        """Change a contact directly (as a user would); lastmodifieddate moves on a change."""
        values = {**(properties or {}), **more}
        with self.lock:
            contact = self._contacts[contact_id]
            normalized, error = self._normalize(values)
            if error:
                raise ValueError(error.message)
            self._update(self._contacts, contact, normalized)

    def archive_contact(self, contact_id: str) -> None:
        """Archive (delete) a contact: it disappears from reads, lists and search."""
        with self.lock:
            contact = self._contacts[contact_id]
            contact.archived = True
            contact.updated = self._tick()

    def get_contact(self, contact_id: str) -> dict[str, Any] | None:
        """The contact with every property it has a value for (archived ones included)."""
        with self.lock:
            contact = self._contacts.get(contact_id)
            return self._render(contact, sorted(contact.properties)) if contact else None

    @property
    def contacts(self) -> dict[str, dict[str, str]]:
        """Live contacts: id → properties (copies)."""
        with self.lock:
            return {c.id: dict(c.properties) for c in self._contacts.values() if not c.archived}

    def find_by_email(self, email: str) -> dict[str, Any] | None:
        """The live contact with this email (case-insensitive), rendered with all its properties."""
        with self.lock:
            contact = self._by_unique(self._contacts, "email", email)
            return self._render(contact, sorted(contact.properties)) if contact else None

    @property
    def inputs_per_write_call(self) -> list[int]:
        """Number of inputs in each batch write call, in order."""
        return [w.size for w in self.writes]

    # -- fault helpers ---------------------------------------------------------------------------

    def rate_limit_next(
        self,
        n: int = 1,
        *,
        policy: str = "TEN_SECONDLY_ROLLING",
        retry_after: float | None = None,
        path: str | None = None,
    ) -> FaultRule:
        """Answer the next ``n`` API calls with 429 and the ``policy`` body (+ Retry-After)."""
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        return self.fail_next(
            n, status=429, body=rate_limit_body(policy), headers=headers, path=path
        )

    def reject_contacts(
        self,
        predicate: Callable[[dict[str, str | None]], bool],
        *,
        message: str = "Property values were not valid",
        category: str = "VALIDATION_ERROR",
        status: int = 400,
        times: int | None = None,
        operations: Iterable[str] = ("create", "update", "upsert"),
    ) -> ContactRule:
        """Refuse writes where ``predicate(properties after the write)`` holds.

        Without ``objectWriteTraceId`` the whole batch fails with ``status``; with it, that input
        gets an error in a 207. ``times`` limits how often the rule fires.
        """
        rule = ContactRule(
            predicate, _HsError(status, category, message), frozenset(operations), times
        )
        with self.lock:
            self._rules.append(rule)
        return rule

    def clear_faults(self) -> None:
        with self.lock:
            super().clear_faults()
            self._rules.clear()

    def default_fault_body(self, status: int) -> Any:
        if status == 429:
            return rate_limit_body()
        if status == 401:
            return error_body(AUTH_FAILED, "INVALID_AUTHENTICATION")
        if status == 423:
            return error_body("Contact is locked by another process; retry in 2 seconds", "LOCKED")
        if status >= 500:
            return error_body("internal error", "INTERNAL_ERROR")
        return error_body("There was a problem with the request.", "VALIDATION_ERROR")

    # -- internals: state ------------------------------------------------------------------------

    def _tick(self) -> datetime:
        moment = datetime.now(UTC)
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        if moment <= self._last_time:
            moment = self._last_time + timedelta(milliseconds=1)
        self._last_time = moment
        return moment

    def _normalize(
        self, values: Mapping[str, Any]
    ) -> tuple[dict[str, str | None], _HsError | None]:
        """Incoming property values → stored strings (None clears); collect invalid ones."""
        out: dict[str, str | None] = {}
        invalid: list[dict[str, Any]] = []
        for name, raw in values.items():
            if name not in self.properties:
                invalid.append(
                    _invalid(name, f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST")
                )
                continue
            if name in READ_ONLY:
                invalid.append(
                    _invalid(
                        name,
                        f'"{name}" is a read only property; its value cannot be set.',
                        "READ_ONLY_VALUE",
                    )
                )
                continue
            if isinstance(raw, dict | list):
                invalid.append(_invalid(name, f"{raw!r} is not a valid value", "INVALID_VALUE"))
                continue
            if raw is None or raw == "":
                out[name] = None
                continue
            if isinstance(raw, bool):
                text = "true" if raw else "false"
            elif isinstance(raw, float) and raw.is_integer():
                text = str(int(raw))
            else:
                text = str(raw)
            if name == "email":
                if not _EMAIL.match(text):
                    invalid.append(
                        _invalid(name, f"Email address {text} is invalid", "INVALID_EMAIL")
                    )
                    continue
                if self.lowercase_emails:
                    text = text.lower()
            options = ENUMERATIONS.get(name)
            if options is not None and text not in options:
                invalid.append(
                    _invalid(
                        name,
                        f"{text} was not one of the allowed options: [{', '.join(options)}]",
                        "INVALID_OPTION",
                    )
                )
                continue
            out[name] = text
        if invalid:
            return out, _HsError(
                400,
                "VALIDATION_ERROR",
                f"Property values were not valid: {json.dumps(invalid)}",
                errors=tuple(
                    {
                        "message": item["message"],
                        "code": item["error"],
                        "context": {"propertyName": [item["name"]]},
                    }
                    for item in invalid
                ),
            )
        return out, None

    def _by_unique(
        self, contacts: Mapping[str, _Contact], prop: str, value: str
    ) -> _Contact | None:
        for contact in contacts.values():
            stored = contact.properties.get(prop)
            if not contact.archived and stored is not None and stored.lower() == value.lower():
                return contact
        return None

    def _conflict(
        self, contacts: Mapping[str, _Contact], own_id: str | None, values: Mapping[str, str | None]
    ) -> _HsError | None:
        email = values.get("email")
        if not email:
            return None
        other = self._by_unique(contacts, "email", email)
        if other is None or other.id == own_id:
            return None
        return _HsError(409, "CONFLICT", f"Contact already exists. Existing ID: {other.id}")

    def _rule_error(self, operation: str, merged: dict[str, str | None]) -> _HsError | None:
        for rule in self._rules:
            if operation not in rule.operations:
                continue
            if rule.remaining is not None and rule.remaining <= 0:
                continue
            if rule.predicate(dict(merged)):
                rule.hits += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
                return rule.error
        return None

    def _index(self, contact: _Contact) -> None:
        contact.index.append(
            (time.monotonic() + self.search_lag, dict(contact.properties), contact.updated)
        )

    def _create(self, contacts: dict[str, _Contact], values: Mapping[str, str | None]) -> _Contact:
        moment = self._tick()
        contact_id = str(self._next_id)
        self._next_id += 1
        stamp = format_timestamp(moment)
        properties = {k: v for k, v in values.items() if v is not None}
        properties.update(createdate=stamp, lastmodifieddate=stamp, hs_object_id=contact_id)
        contact = _Contact(contact_id, properties, moment, moment)
        self._index(contact)
        contacts[contact_id] = contact
        return contact

    def _update(
        self, contacts: dict[str, _Contact], contact: _Contact, values: Mapping[str, str | None]
    ) -> _Contact:
        properties = dict(contact.properties)
        for name, value in values.items():
            if value is None:
                properties.pop(name, None)
            else:
                properties[name] = value
        if properties == contact.properties:
            return contact  # no change: no new lastmodifieddate (HubSpot records no change)
        moment = self._tick()
        properties["lastmodifieddate"] = format_timestamp(moment)
        updated = _Contact(
            contact.id, properties, contact.created, moment, contact.archived, list(contact.index)
        )
        self._index(updated)
        contacts[contact.id] = updated
        return updated

    def _render(
        self,
        contact: _Contact,
        requested: Iterable[str] | None,
        *,
        snapshot: tuple[dict[str, str], datetime] | None = None,
    ) -> dict[str, Any]:
        properties, updated = snapshot if snapshot else (contact.properties, contact.updated)
        names = list(requested) if requested is not None else list(DEFAULT_READ_PROPERTIES)
        rendered: dict[str, str | None] = {}
        for name in [*names, *ALWAYS_RETURNED]:
            if name in self.properties:
                rendered[name] = properties.get(name)
        body: dict[str, Any] = {
            "id": contact.id,
            "properties": rendered,
            "createdAt": format_timestamp(contact.created),
            "updatedAt": format_timestamp(updated),
            "archived": contact.archived,
        }
        if contact.archived:
            body["archivedAt"] = format_timestamp(contact.updated)
        return body

    def _order(self, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.shuffle_batch_results:
            self._rng.shuffle(results)
        return results

    # -- internals: HTTP -------------------------------------------------------------------------

    def _token(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        def failure(status: str, message: str, error: str) -> tuple[int, dict[str, Any]]:
            return 400, {
                "status": status,
                "message": message,
                "correlationId": _correlation(),
                "error": error,
                "error_description": message,
            }

        if form.get("grant_type") != "refresh_token":
            return failure("BAD_GRANT_TYPE", "unsupported grant_type", "unsupported_grant_type")
        if form.get("client_id") != self.client_id:
            return failure("BAD_CLIENT_ID", "missing or unknown client id", "invalid_client")
        if form.get("client_secret") != self.client_secret:
            return failure(
                "BAD_CLIENT_SECRET", "missing or invalid client secret", "invalid_client"
            )
        with self.lock:
            valid = (
                self.refresh_token is not None and form.get("refresh_token") == self.refresh_token
            )
        if not valid:
            return failure(
                "BAD_REFRESH_TOKEN", "refresh token is invalid, expired or revoked", "invalid_grant"
            )
        return 200, {
            "token_type": "bearer",
            "refresh_token": self.refresh_token,
            "access_token": self.issue_token(),
            "hub_id": self.portal_id,
            "scopes": ["oauth", "crm.objects.contacts.read", "crm.objects.contacts.write"],
            "expires_in": self.token_ttl,
        }

    def _authorize(
        self, request: Request, *, search: bool = False
    ) -> tuple[Response | None, dict[str, str]]:
        """Check the bearer token and the rate limits; return (refusal, headers for the answer)."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        now = time.time()
        with self.lock:
            static = self.access_token is not None and token == self.access_token
            if scheme.lower() != "bearer" or not (static or token in self._tokens):
                return JSONResponse(
                    error_body(AUTH_FAILED, "INVALID_AUTHENTICATION"), status_code=401
                ), {}
            if not static and self._tokens[token] <= now:
                ago = max(1, int(now - self._tokens[token]))
                body = error_body(
                    f"The OAuth token used to make this call expired {ago} second(s) ago.",
                    "EXPIRED_AUTHENTICATION",
                )
                return JSONResponse(body, status_code=401), {}
            headers: dict[str, str] = {}
            if self.daily_limit is not None:
                if self._daily_used >= self.daily_limit:
                    return JSONResponse(rate_limit_body("DAILY"), status_code=429), {}
                self._daily_used += 1
                if static and not search:
                    headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
                    headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                        self.daily_limit - self._daily_used
                    )
            if self.burst_limit is not None and not search:
                while self._burst and self._burst[0] <= now - self.burst_window:
                    self._burst.popleft()
                if len(self._burst) >= self.burst_limit:
                    return JSONResponse(rate_limit_body(), status_code=429), {}
                self._burst.append(now)
                headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(
                    int(self.burst_window * 1000)
                )
                headers["X-HubSpot-RateLimit-Max"] = str(self.burst_limit)
                headers["X-HubSpot-RateLimit-Remaining"] = str(self.burst_limit - len(self._burst))
        return None, headers

    def _get(self, contact_id: str, query: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        archived = query.get("archived", "false").lower() == "true"
        id_property = query.get("idProperty")
        with self.lock:
            if id_property and id_property != "hs_object_id":
                if id_property not in self.unique_properties:
                    return _not_unique(id_property)
                contact = self._by_unique(self._contacts, id_property, contact_id)
            else:
                contact = self._contacts.get(contact_id)
            if contact is None or contact.archived != archived:
                return 404, error_body("resource not found", "OBJECT_NOT_FOUND")
            return 200, self._render(contact, _split(query.get("properties")))

    def _list(self, query: Mapping[str, str], base: str) -> tuple[int, dict[str, Any]]:
        try:
            limit = int(query.get("limit", "10"))
            after = int(query.get("after", "0"))
        except ValueError:
            return 400, error_body("limit and after must be integers", "VALIDATION_ERROR")
        if not 1 <= limit <= LIST_LIMIT:
            return 400, error_body(f"limit must be between 1 and {LIST_LIMIT}", "VALIDATION_ERROR")
        archived = query.get("archived", "false").lower() == "true"
        requested = _split(query.get("properties"))
        with self.lock:
            ordered = sorted(
                (
                    c
                    for c in self._contacts.values()
                    if c.archived == archived and int(c.id) >= after
                ),
                key=lambda c: int(c.id),
            )
            page = ordered[: limit + 1]
            body: dict[str, Any] = {"results": [self._render(c, requested) for c in page[:limit]]}
        if len(page) > limit:
            cursor = page[limit].id
            body["paging"] = {
                "next": {"after": cursor, "link": f"{base}/crm/v3/objects/contacts?after={cursor}"}
            }
        return 200, body

    def _batch(
        self, operation: str, raw: bytes, query: Mapping[str, str], path: str
    ) -> tuple[int, dict[str, Any]]:
        body, problem = parse_json(raw)
        if (
            problem is not None
            or not isinstance(body, dict)
            or not isinstance(body.get("inputs"), list)
        ):
            message = (
                f"Invalid input JSON: {problem}"
                if problem
                else "Invalid input JSON: inputs is required"
            )
            return 400, error_body(message, "VALIDATION_ERROR")
        inputs: list[Any] = body["inputs"]
        if len(inputs) > BATCH_LIMIT:
            status, answer = (
                400,
                error_body(
                    f"The maximum number of inputs supported in a batch is {BATCH_LIMIT}. Please "
                    "reduce the number of items and try again",
                    "VALIDATION_ERROR",
                ),
            )
        elif not all(isinstance(i, dict) for i in inputs):
            status, answer = (
                400,
                error_body("Invalid input JSON: each input must be an object", "VALIDATION_ERROR"),
            )
        elif operation == "read":
            return self._batch_read(body, query)
        else:
            with self.lock:
                status, answer = self._batch_write(operation, body, inputs)
        self.record_write("POST", path, operation, len(inputs), status)
        return status, answer

    def _batch_read(
        self, body: Mapping[str, Any], query: Mapping[str, str]
    ) -> tuple[int, dict[str, Any]]:
        started = format_timestamp(datetime.now(UTC))
        archived = query.get("archived", "false").lower() == "true"
        id_property = body.get("idProperty")
        requested = body.get("properties") if isinstance(body.get("properties"), list) else None
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        seen: set[str] = set()
        with self.lock:
            if (
                id_property
                and id_property != "hs_object_id"
                and id_property not in self.unique_properties
            ):
                return _not_unique(id_property)
            for item in body["inputs"]:
                wanted = str(item.get("id", ""))
                if id_property and id_property != "hs_object_id":
                    contact = self._by_unique(self._contacts, id_property, wanted)
                else:
                    contact = self._contacts.get(wanted)
                if contact is None or contact.archived != archived:
                    missing.append(wanted)
                elif contact.id not in seen:
                    seen.add(contact.id)
                    results.append(self._render(contact, requested))
            results = self._order(results)
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started}
        if missing:
            answer["numErrors"] = 1
            answer["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "Could not get some CONTACT objects, they may be deleted or not "
                    "exist. Check that ids are valid.",
                    "context": {"ids": missing},
                }
            ]
        answer["completedAt"] = format_timestamp(datetime.now(UTC))
        return (207 if missing else 200), answer

    def _batch_write(
        self, operation: str, body: Mapping[str, Any], inputs: list[dict[str, Any]]
    ) -> tuple[int, dict[str, Any]]:
        started = format_timestamp(datetime.now(UTC))
        multi_status = any("objectWriteTraceId" in i for i in inputs)
        default_id_property = body.get("idProperty")
        if operation == "update" and default_id_property not in (None, "hs_object_id"):
            return _not_unique(str(default_id_property))
        if operation in ("update", "upsert"):
            keys = [
                (
                    str(i.get("idProperty", default_id_property) or "hs_object_id"),
                    str(i.get("id", "")).lower(),
                )
                for i in inputs
            ]
            duplicates = sorted({k[1] for k in keys if keys.count(k) > 1})
            if duplicates:
                return 400, error_body(
                    f"Duplicate IDs found in batch input: [{', '.join(duplicates)}]. IDs must be "
                    "unique",
                    "VALIDATION_ERROR",
                    context={"ids": duplicates},
                )
        working = dict(self._contacts)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            trace = item.get("objectWriteTraceId")
            try:
                results.append(self._write_input(working, operation, item, default_id_property))
            except _InputFailedError as abort:
                if not multi_status and abort.error.category != "OBJECT_NOT_FOUND":
                    return abort.error.status, abort.error.body()
                errors.append(abort.error.item(str(trace) if trace is not None else None))
        self._contacts = working
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": self._order(results),
            "startedAt": started,
        }
        if errors:
            answer["numErrors"] = len(errors)
            answer["errors"] = errors
        answer["completedAt"] = format_timestamp(datetime.now(UTC))
        if errors:
            return 207, answer
        return (201 if operation == "create" else 200), answer

    def _write_input(
        self,
        working: dict[str, _Contact],
        operation: str,
        item: Mapping[str, Any],
        default_id_property: Any,
    ) -> dict[str, Any]:
        """Apply one batch input onto ``working``; raise _InputFailedError for its error."""
        properties = item.get("properties")
        if not isinstance(properties, dict):
            raise _InputFailedError(
                _HsError(400, "VALIDATION_ERROR", "Invalid input JSON: properties is required")
            )
        values, error = self._normalize(properties)
        if error:
            raise _InputFailedError(error)
        existing: _Contact | None = None
        if operation in ("update", "upsert"):
            wanted = str(item.get("id", ""))
            id_property = item.get("idProperty", default_id_property) or "hs_object_id"
            if id_property == "hs_object_id":
                existing = working.get(wanted)
                if existing is not None and existing.archived:
                    existing = None
                if existing is None:
                    raise _InputFailedError(
                        _HsError(
                            404,
                            "OBJECT_NOT_FOUND",
                            "Could not get some CONTACT objects, they may be deleted or not exist. "
                            "Check that ids are valid.",
                            context={"ids": [wanted]},
                        )
                    )
            elif id_property in self.unique_properties:
                existing = self._by_unique(working, id_property, wanted)
                if existing is None:
                    key = (
                        wanted.lower()
                        if id_property == "email" and self.lowercase_emails
                        else wanted
                    )
                    values = {id_property: key, **values}
            else:
                raise _InputFailedError(
                    _HsError(400, "VALIDATION_ERROR", _not_unique(id_property)[1]["message"])
                )
        if existing is None and not any(values.get(p) for p in DEFAULT_READ_PROPERTIES):
            raise _InputFailedError(
                _HsError(
                    400,
                    "VALIDATION_ERROR",
                    "At least one of the properties email, firstname or lastname is required to "
                    "create a contact",
                )
            )
        merged = {**(existing.properties if existing else {}), **values}
        rejected = self._rule_error(operation, merged)
        if rejected:
            raise _InputFailedError(rejected)
        conflict = self._conflict(working, existing.id if existing else None, values)
        if conflict:
            raise _InputFailedError(conflict)
        contact = (
            self._update(working, existing, values) if existing else self._create(working, values)
        )
        rendered = self._render(contact, [*values])
        if operation == "upsert":
            rendered["new"] = existing is None
        return rendered

    def _search(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        if len(raw) > SEARCH_BODY_LIMIT:
            return 400, error_body(
                f"The request body exceeds the maximum of {SEARCH_BODY_LIMIT} characters",
                "VALIDATION_ERROR",
            )
        body, problem = parse_json(raw)
        if problem is not None or not isinstance(body, dict):
            return 400, error_body(
                f"Invalid input JSON: {problem or 'expected an object'}", "VALIDATION_ERROR"
            )
        try:
            limit = int(body.get("limit", 10))
            offset = int(body.get("after", 0) or 0)
        except (TypeError, ValueError):
            return 400, error_body("limit and after must be integers", "VALIDATION_ERROR")
        groups = body.get("filterGroups") or []
        sorts = body.get("sorts") or []
        problem = _check_search(groups, sorts, limit, offset)
        if problem:
            return 400, error_body(problem, "VALIDATION_ERROR")
        text = str(body.get("query") or "").lower()
        now = time.monotonic()
        hits: list[tuple[_Contact, dict[str, str], datetime]] = []
        with self.lock:
            for contact in self._contacts.values():
                if contact.archived:
                    continue
                visible = [(props, upd) for at, props, upd in contact.index if at <= now]
                if not visible:
                    continue  # not indexed yet
                props, updated = visible[-1]
                if groups and not any(_group_matches(g, props) for g in groups):
                    continue
                if text and not any(
                    text in (props.get(p) or "").lower() for p in SEARCH_QUERY_PROPERTIES
                ):
                    continue
                hits.append((contact, props, updated))
            hits.sort(key=lambda hit: int(hit[0].id))
            if sorts:
                prop = sorts[0].get("propertyName", "")
                descending = str(sorts[0].get("direction", "ASCENDING")).upper() == "DESCENDING"
                present = [h for h in hits if h[1].get(prop) is not None]
                absent = [h for h in hits if h[1].get(prop) is None]
                present.sort(key=lambda h: _sort_key(h[1][prop]), reverse=descending)
                hits = present + absent
            requested = body.get("properties") if isinstance(body.get("properties"), list) else None
            names = requested if requested is not None else ["email", "firstname", "lastname"]
            page = [
                self._render(contact, names, snapshot=(props, updated))
                for contact, props, updated in hits[offset : offset + limit]
            ]
        answer: dict[str, Any] = {"total": len(hits), "results": page}
        if offset + limit < len(hits):
            answer["paging"] = {"next": {"after": str(offset + limit)}}
        return 200, answer


def _invalid(name: str, message: str, error: str) -> dict[str, Any]:
    return {"isValid": False, "message": message, "error": error, "name": name}


def _not_unique(id_property: str) -> tuple[int, dict[str, Any]]:
    return 400, error_body(
        f"Unable to perform update/upsert by non-unique 0-1 property {id_property}",
        "VALIDATION_ERROR",
    )


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [p.strip() for p in value.split(",") if p.strip()]


_OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)


def _check_search(groups: Any, sorts: Any, limit: int, offset: int) -> str | None:
    """The documented search limits; a message for the first one broken."""
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        return "Invalid input JSON: filterGroups must be a list of objects"
    if len(groups) > 5:
        return f"Too many filter groups: {len(groups)}. The maximum is 5."
    total = 0
    for group in groups:
        filters = group.get("filters") or []
        if len(filters) > 6:
            return f"Too many filters in a group: {len(filters)}. The maximum is 6."
        total += len(filters)
        for item in filters:
            if not isinstance(item, dict) or "propertyName" not in item:
                return "Invalid input JSON: each filter needs a propertyName"
            if item.get("operator") not in _OPERATORS:
                return f"Unknown operator: {item.get('operator')}"
            if item["operator"] in ("IN", "NOT_IN") and not isinstance(item.get("values"), list):
                return f"Operator {item['operator']} requires 'values'"
    if total > 18:
        return f"Too many filters: {total}. The maximum is 18 in total."
    if not isinstance(sorts, list) or len(sorts) > 1:
        return "Only one sort is supported"
    if not 1 <= limit <= SEARCH_PAGE_LIMIT:
        return f"limit must be between 1 and {SEARCH_PAGE_LIMIT}"
    if offset < 0 or offset + limit > SEARCH_RESULT_LIMIT:
        return f"Search results are limited to {SEARCH_RESULT_LIMIT} total results"
    return None


def _sort_key(value: str) -> tuple[int, float, str]:
    number = _as_number(value)
    return (0, number, "") if number is not None else (1, 0.0, value.lower())


def _as_number(value: Any) -> float | None:
    """Numbers, and ISO timestamps as epoch milliseconds (how HubSpot compares dates)."""
    if value is None:
        return None
    text = str(value)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000
    except ValueError:
        return None


def _group_matches(group: Mapping[str, Any], props: Mapping[str, str]) -> bool:
    return all(_filter_matches(f, props) for f in group.get("filters") or [])


def _filter_matches(item: Mapping[str, Any], props: Mapping[str, str]) -> bool:
    operator = item["operator"]
    stored = props.get(item["propertyName"])
    if operator == "HAS_PROPERTY":
        return stored is not None
    if operator == "NOT_HAS_PROPERTY":
        return stored is None
    if operator == "IN":
        # "values must be lowercase": the index holds lower-cased strings.
        return stored is not None and stored.lower() in [str(v) for v in item["values"]]
    if operator == "NOT_IN":
        return stored is None or stored.lower() not in [str(v) for v in item["values"]]
    value = item.get("value")
    if operator == "NEQ":
        return stored is None or stored.lower() != str(value).lower()
    if stored is None:
        return False
    if operator == "EQ":
        left, right = _as_number(stored), _as_number(value)
        if left is not None and right is not None:
            return left == right
        return stored.lower() == str(value).lower()
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = re.escape(str(value).lower()).replace(r"\*", ".*")
        found = any(
            re.fullmatch(pattern, token) for token in re.split(r"[\s@.,;]+", stored.lower())
        )
        found = found or re.fullmatch(pattern, stored.lower()) is not None
        return found if operator == "CONTAINS_TOKEN" else not found
    left = _as_number(stored)
    if operator == "BETWEEN":
        low, high = _as_number(value), _as_number(item.get("highValue"))
        return None not in (left, low, high) and low <= left <= high  # type: ignore[operator]
    right = _as_number(value)
    if left is None or right is None:
        left_text, right_text = stored.lower(), str(value).lower()
        return {
            "LT": left_text < right_text,
            "LTE": left_text <= right_text,
            "GT": left_text > right_text,
            "GTE": left_text >= right_text,
        }[operator]
    return {"LT": left < right, "LTE": left <= right, "GT": left > right, "GTE": left >= right}[
        operator
    ]


def create_hubspot_app(fake: FakeHubSpot) -> ASGIApp:
    """The ASGI app serving ``fake`` (FastAPI wrapped in the fault-injection middleware)."""
    app = FastAPI(title="fake HubSpot", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(StarletteHTTPException)
    async def platform_errors(request: Request, exc: StarletteHTTPException) -> Response:
        return JSONResponse(
            error_body("resource not found", "OBJECT_NOT_FOUND"), status_code=exc.status_code
        )

    @app.post("/oauth/v1/token")
    async def token(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("latin-1"), keep_blank_values=True))
        status, body = fake._token(form)
        return JSONResponse(body, status_code=status)

    @app.get("/crm/v3/objects/contacts/{contact_id}")
    async def get_contact(request: Request, contact_id: str) -> Response:
        denied, headers = fake._authorize(request)
        if denied:
            return denied
        status, body = fake._get(contact_id, request.query_params)
        return JSONResponse(body, status_code=status, headers=headers)

    @app.get("/crm/v3/objects/contacts")
    async def list_contacts(request: Request) -> Response:
        denied, headers = fake._authorize(request)
        if denied:
            return denied
        status, body = fake._list(request.query_params, str(request.base_url).rstrip("/"))
        return JSONResponse(body, status_code=status, headers=headers)

    @app.post("/crm/v3/objects/contacts/batch/{operation}")
    async def batch(request: Request, operation: str) -> Response:
        if operation not in ("read", "create", "update", "upsert"):
            return JSONResponse(
                error_body("resource not found", "OBJECT_NOT_FOUND"), status_code=404
            )
        denied, headers = fake._authorize(request)
        if denied:
            return denied
        status, body = fake._batch(
            operation, await request.body(), request.query_params, request.url.path
        )
        return JSONResponse(body, status_code=status, headers=headers)

    @app.post("/crm/v3/objects/contacts/search")
    async def search(request: Request) -> Response:
        denied, _ = fake._authorize(request, search=True)
        if denied:
            return denied
        status, body = fake._search(await request.body())
        return JSONResponse(body, status_code=status)  # search answers carry no rate-limit headers

    return FaultMiddleware(app, fake)
