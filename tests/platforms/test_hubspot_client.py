"""HubSpot contacts client, OAuth and request budget against MockTransport emulations of the
responses quoted in reference/hubspot.md §3."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from syncgate.config import Settings
from syncgate.platforms.hubspot.client import (
    BatchResult,
    HubSpotClient,
    HubSpotError,
    PermanentError,
    RequestBudget,
    TransientError,
    retry_after_seconds,
)
from syncgate.platforms.hubspot.oauth import HubSpotAuth

if importlib.util.find_spec("fakes") is None:  # tests/ is on sys.path only via its conftest
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
try:
    from fakes.hubspot import FakeHubSpot, create_hubspot_app
    from fakes.server import FakeServer, running
except ImportError:  # the fake HubSpot server is optional
    FakeHubSpot = None  # type: ignore[assignment,misc]

BASE = "https://api.hubapi.test"
STATIC = "pat-na1-static-secret-token"
CLIENT_ID = "client-id-1"
CLIENT_SECRET = "client-secret-shh"
REFRESH = "na1-refresh-token-1"
UPDATED = "2026-11-28T10:00:00.000Z"
UPDATED_MS = 1795860000000
NOON = datetime(2026, 11, 28, 12, 20, tzinfo=UTC)

Handler = Callable[[httpx.Request], httpx.Response]


def error(status: int, message: str, category: str, **extra: Any) -> httpx.Response:
    body = {"status": "error", "message": message, "correlationId": "c0ffee", "category": category}
    return httpx.Response(status, json={**body, **extra})


class FakeTime:
    """Injectable monotonic clock and sleep: sleeping advances the clock instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class MockHubSpot:
    """MockTransport handler: contacts API and token endpoint with HubSpot's documented shapes."""

    def __init__(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {}
        self.tokens = {STATIC}
        self.refresh_tokens = {REFRESH}
        self.rotate = False
        self.hidden_from_search: set[str] = set()
        self.requests: list[httpx.Request] = []
        self.token_forms: list[dict[str, str]] = []
        self._next_id = 5000
        self._issued = 0

    def add(self, email: str | None, **properties: str) -> str:
        self._next_id += 1
        contact_id = str(self._next_id)
        props: dict[str, str | None] = {"email": email, **properties, "hs_object_id": contact_id}
        self.contacts[contact_id] = {
            "id": contact_id,
            "properties": props,
            "createdAt": UPDATED,
            "updatedAt": UPDATED,
            "archived": False,
        }
        return contact_id

    def by_email(self, email: str) -> str | None:
        for contact_id, contact in self.contacts.items():
            props = contact["properties"]
            emails = [
                props.get("email") or "",
                *(props.get("hs_additional_emails") or "").split(";"),
            ]
            if email.lower() in {e.lower() for e in emails if e}:
                return contact_id
        return None

    def view(self, contact_id: str, wanted: list[str] | None) -> dict[str, Any]:
        contact = self.contacts[contact_id]
        props = contact["properties"]
        names = wanted or ["email", "firstname", "lastname"]
        return {**contact, "properties": {n: props.get(n) for n in names}}

    def calls(self, path: str, method: str | None = None) -> list[httpx.Request]:
        return [
            r
            for r in self.requests
            if r.url.path == path and (method is None or r.method == method)
        ]

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/oauth/v1/token":
            return self._token(request)
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.tokens:
            return error(
                401,
                "The OAuth token used to make this call expired 7 second(s) ago.",
                "EXPIRED_AUTHENTICATION",
            )
        body = json.loads(request.content) if request.content else {}
        prefix = "/crm/v3/objects/contacts"
        route = path.removeprefix(prefix)
        if request.method == "GET" and route == "":
            return self._list(request)
        if request.method == "GET":
            contact_id = route.strip("/")
            if contact_id not in self.contacts:
                return error(404, "resource not found", "OBJECT_NOT_FOUND")
            wanted = request.url.params.get("properties", "").split(",")
            return httpx.Response(200, json=self.view(contact_id, [w for w in wanted if w]))
        handlers = {
            "/batch/read": self._batch_read,
            "/batch/create": self._batch_create,
            "/batch/update": self._batch_update,
            "/batch/upsert": self._batch_upsert,
            "/search": self._search,
        }
        return handlers[route](body)

    def _token(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.token_forms.append(form)
        if form.get("refresh_token") not in self.refresh_tokens:
            return httpx.Response(
                400,
                json={
                    "error": "invalid_grant",
                    "error_description": "refresh token is invalid, expired or revoked",
                    "status": "BAD_REFRESH_TOKEN",
                    "message": "refresh token is invalid, expired or revoked",
                },
            )
        self._issued += 1
        token = f"oauth-access-{self._issued}"
        self.tokens.add(token)
        answer: dict[str, Any] = {
            "token_type": "bearer",
            "refresh_token": form["refresh_token"],
            "access_token": token,
            "hub_id": 1234567,
            "expires_in": 1800,
        }
        if self.rotate:
            answer["refresh_token"] = f"na1-refresh-token-{self._issued + 1}"
            self.refresh_tokens = {answer["refresh_token"]}
        return httpx.Response(200, json=answer)

    def _list(self, request: httpx.Request) -> httpx.Response:
        ids = sorted(self.contacts, key=int)
        limit = int(request.url.params.get("limit", "10"))
        start = int(request.url.params.get("after", "0"))
        wanted = [p for p in request.url.params.get("properties", "").split(",") if p]
        page = ids[start : start + limit]
        body: dict[str, Any] = {"results": [self.view(i, wanted) for i in page]}
        if start + limit < len(ids):
            body["paging"] = {"next": {"after": str(start + limit), "link": "…"}}
        return httpx.Response(200, json=body)

    def _batch_read(self, body: dict[str, Any]) -> httpx.Response:
        ids = [item["id"] for item in body["inputs"]]
        found = [self.view(i, body["properties"]) for i in ids if i in self.contacts]
        missing = [i for i in ids if i not in self.contacts]
        answer: dict[str, Any] = {"status": "COMPLETE", "results": found}
        if missing:
            answer["numErrors"] = 1
            answer["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "Could not get some CONTACT objects, they may be deleted.",
                    "context": {"ids": missing},
                }
            ]
        return httpx.Response(207 if missing else 200, json=answer)

    def _batch_create(self, body: dict[str, Any]) -> httpx.Response:
        assert len(body["inputs"]) <= 100
        for item in body["inputs"]:
            existing = self.by_email(item["properties"].get("email") or "")
            if existing:
                # Whole call rejected; only the first conflict is named (python#51).
                return error(409, f"Contact already exists. Existing ID: {existing}", "CONFLICT")
        created = []
        for item in body["inputs"]:
            props = item["properties"]
            contact_id = self.add(
                props.get("email"), **{k: v for k, v in props.items() if k != "email"}
            )
            created.append(self.view(contact_id, list(props)))
        # Results carry no trace id and come back in no particular order.
        return httpx.Response(201, json={"status": "COMPLETE", "results": created[::-1]})

    def _batch_update(self, body: dict[str, Any]) -> httpx.Response:
        for item in body["inputs"]:
            owner = self.by_email(item["properties"].get("email") or "")
            if owner not in (None, item["id"]):
                return error(409, f"Contact already exists. Existing ID: {owner}", "CONFLICT")
        results, missing = [], []
        for item in body["inputs"]:
            if item["id"] not in self.contacts:
                missing.append(item["id"])
                continue
            self.contacts[item["id"]]["properties"].update(item["properties"])
            results.append(self.view(item["id"], list(item["properties"])))
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if missing:
            answer["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "Could not update some CONTACT objects.",
                    "context": {"ids": missing},
                }
            ]
        return httpx.Response(207 if missing else 200, json=answer)

    def _batch_upsert(self, body: dict[str, Any]) -> httpx.Response:
        results = []
        for item in body["inputs"]:
            assert item["idProperty"] == "email"
            contact_id = self.by_email(item["id"])
            new = contact_id is None
            if contact_id is None:
                contact_id = self.add(item["id"])
            self.contacts[contact_id]["properties"].update(item["properties"])
            results.append({**self.view(contact_id, list(item["properties"])), "new": new})
        return httpx.Response(200, json={"status": "COMPLETE", "results": results})

    def _search(self, body: dict[str, Any]) -> httpx.Response:
        if len(json.dumps(body)) > 3000:
            return error(400, "Query too long", "VALIDATION_ERROR")
        (flt,) = body["filterGroups"][0]["filters"]
        assert flt["propertyName"] == "email" and flt["operator"] == "IN"
        assert all(v == v.lower() for v in flt["values"])
        hits = [
            i
            for i, c in self.contacts.items()
            if (c["properties"].get("email") or "").lower() in flt["values"]
            and i not in self.hidden_from_search
        ]
        start = int(body.get("after") or 0)
        page = hits[start : start + body["limit"]]
        answer: dict[str, Any] = {
            "total": len(hits),
            "results": [self.view(i, body["properties"]) for i in page],
        }
        if start + body["limit"] < len(hits):
            answer["paging"] = {"next": {"after": str(start + body["limit"])}}
        return httpx.Response(200, json=answer)


@pytest.fixture
def fake() -> MockHubSpot:
    return MockHubSpot()


@pytest.fixture
def time_() -> FakeTime:
    return FakeTime()


def make_client(
    handler: Handler,
    time_: FakeTime,
    *,
    auth: HubSpotAuth | None = None,
    budget: RequestBudget | None = None,
) -> HubSpotClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    budget = budget or RequestBudget(clock=time_.clock, sleep=time_.sleep, utcnow=lambda: NOON)
    return HubSpotClient(auth or HubSpotAuth.static(STATIC), http, BASE + "/", budget)


def oauth_client(fake: MockHubSpot, time_: FakeTime) -> tuple[HubSpotClient, HubSpotAuth]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake.handler))
    auth = HubSpotAuth.refresh_flow(
        http,
        api_base=BASE,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH,
        clock=time_.clock,
    )
    return make_client(fake.handler, time_, auth=auth), auth


def assert_no_secrets(text: str) -> None:
    for secret in (STATIC, CLIENT_SECRET, REFRESH, "oauth-access-"):
        assert secret not in text


# --- reads -------------------------------------------------------------------------------------


async def test_get_contact_sends_static_token_and_parses_contact(
    fake: MockHubSpot, time_: FakeTime
) -> None:
    contact_id = fake.add("Ada@Example.com", firstname="Ada")
    client = make_client(fake.handler, time_)

    contact = await client.get_contact(contact_id, ["email", "firstname", "phone"])

    request = fake.requests[-1]
    assert request.headers["Authorization"] == f"Bearer {STATIC}"
    assert request.url.path == f"/crm/v3/objects/contacts/{contact_id}"
    assert request.url.params["properties"] == "email,firstname,phone"
    assert contact is not None
    assert contact.id == contact_id
    assert contact.properties == {"email": "Ada@Example.com", "firstname": "Ada", "phone": None}
    assert contact.updated_at_ms == UPDATED_MS
    assert contact.archived is False


async def test_get_contact_404_is_none(fake: MockHubSpot, time_: FakeTime) -> None:
    assert await make_client(fake.handler, time_).get_contact("999", ["email"]) is None


async def test_batch_read_chunks_by_100_and_skips_unknown_ids(
    fake: MockHubSpot, time_: FakeTime
) -> None:
    ids = [fake.add(f"p{i}@example.com") for i in range(150)]

    contacts = await make_client(fake.handler, time_).batch_read([*ids, "404404"], ["email"])

    assert sorted(c.id for c in contacts) == sorted(ids)
    calls = fake.calls("/crm/v3/objects/contacts/batch/read")
    assert [len(json.loads(r.content)["inputs"]) for r in calls] == [100, 51]


async def test_batch_read_takes_the_slots_of_its_calls_together_and_sends_them_at_once(
    fake: MockHubSpot, time_: FakeTime
) -> None:
    ids = [fake.add(f"p{i}@example.com") for i in range(250)]
    budget = RequestBudget(per_window=4, clock=time_.clock, sleep=time_.sleep, utcnow=lambda: NOON)
    client = make_client(fake.handler, time_, budget=budget)
    await budget.acquire()
    await budget.acquire()  # 2 of 4 slots taken at t=1000

    time_.now += 1
    contacts = await client.batch_read(ids, ["email"])

    # Its 3 calls wait together for the first slot to free (t=1010), then go out at once.
    assert len(contacts) == 250
    assert time_.sleeps == [pytest.approx(9.0)]
    assert budget.used_today == 5


async def test_more_slots_than_the_window_holds_are_taken_a_window_at_a_time(
    time_: FakeTime,
) -> None:
    budget = RequestBudget(per_window=2, clock=time_.clock, sleep=time_.sleep, utcnow=lambda: NOON)

    await budget.acquire(count=5)

    assert time_.sleeps == [pytest.approx(10.0), pytest.approx(10.0)]
    assert budget.used_today == 5


async def test_list_contacts_pages_with_after_cursor(fake: MockHubSpot, time_: FakeTime) -> None:
    ids = [fake.add(f"p{i}@example.com") for i in range(250)]
    client = make_client(fake.handler, time_)

    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page, after = await client.list_contacts(["email"], after=after)
        seen += [c.id for c in page]
        pages += 1
        if after is None:
            break

    assert seen == ids
    assert pages == 3
    assert fake.requests[1].url.params["after"] == "100"
    assert fake.requests[0].url.params["limit"] == "100"
    with pytest.raises(ValueError):
        await client.list_contacts(["email"], limit=101)


async def test_search_by_emails_chunks_under_body_limit_and_keys_by_lowercase(
    fake: MockHubSpot, time_: FakeTime
) -> None:
    emails = [f"Person.Number{i:03}@Example-Company.com" for i in range(250)]
    for email in emails[::2]:
        fake.add(email.lower())

    found = await make_client(fake.handler, time_).search_by_emails(
        [*emails, emails[0].upper(), ""], ["firstname"]
    )

    assert set(found) == {e.lower() for e in emails[::2]}
    calls = fake.calls("/crm/v3/objects/contacts/search")
    assert len(calls) > 2
    sent: list[str] = []
    for call in calls:
        body = json.loads(call.content)
        assert len(json.dumps(body)) <= 3000
        assert "email" in body["properties"] and "firstname" in body["properties"]
        sent += body["filterGroups"][0]["filters"][0]["values"]
    assert sorted(sent) == sorted(e.lower() for e in emails)


async def test_search_by_emails_follows_paging(time_: FakeTime) -> None:
    pages = {
        None: {
            "results": [{"id": "1", "properties": {"email": "a@x.io"}}],
            "paging": {"next": {"after": "1"}},
        },
        "1": {"results": [{"id": "2", "properties": {"email": "b@x.io"}}]},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages[json.loads(request.content).get("after")])

    found = await make_client(handler, time_).search_by_emails(["a@x.io", "b@x.io"], [])
    assert {k: v.id for k, v in found.items()} == {"a@x.io": "1", "b@x.io": "2"}


# --- batch writes ------------------------------------------------------------------------------


async def test_batch_create_maps_results_to_inputs(fake: MockHubSpot, time_: FakeTime) -> None:
    inputs: list[dict[str, str | None]] = [
        {"email": f"new{i}@example.com", "firstname": f"N{i}"} for i in range(3)
    ]

    results = await make_client(fake.handler, time_).batch_create(inputs)

    assert [r.index for r in results] == [0, 1, 2]
    assert all(r.success and r.id for r in results)
    for result, item in zip(results, inputs, strict=True):
        assert fake.contacts[str(result.id)]["properties"]["email"] == item["email"]
    (call,) = fake.calls("/crm/v3/objects/contacts/batch/create")
    assert [i["objectWriteTraceId"] for i in json.loads(call.content)["inputs"]] == ["0", "1", "2"]


async def test_batch_create_refuses_more_than_100(fake: MockHubSpot, time_: FakeTime) -> None:
    with pytest.raises(ValueError, match="100"):
        await make_client(fake.handler, time_).batch_create([{"email": "x@y.z"}] * 101)
    assert fake.requests == []


async def test_batch_create_409_resolves_every_conflict_without_duplicates(
    fake: MockHubSpot, time_: FakeTime
) -> None:
    b_id = fake.add("b@example.com")
    d_id = fake.add("d@example.com")
    inputs: list[dict[str, str | None]] = [
        {"email": "a@example.com"},
        {"email": "B@Example.com", "firstname": "Bee"},
        {"email": "c@example.com"},
        {"email": "d@example.com"},
    ]

    results = await make_client(fake.handler, time_).batch_create(inputs)

    assert results[1] == BatchResult(
        1, False, message=f"Contact already exists. Existing ID: {b_id}", existing_id=b_id
    )
    assert results[3].existing_id == d_id and not results[3].success
    assert results[0].success and results[2].success
    emails = [c["properties"]["email"].lower() for c in fake.contacts.values()]
    assert sorted(emails) == sorted(set(emails)) and len(emails) == 4
    creates = fake.calls("/crm/v3/objects/contacts/batch/create")
    assert len(creates) == 2
    assert [i["properties"]["email"] for i in json.loads(creates[1].content)["inputs"]] == [
        "a@example.com",
        "c@example.com",
    ]


async def test_batch_create_409_with_lagging_search_index_still_converges(
    fake: MockHubSpot, time_: FakeTime
) -> None:
    existing = {fake.add(f"old{i}@example.com"): f"old{i}@example.com" for i in range(3)}
    fake.hidden_from_search = set(existing)
    inputs: list[dict[str, str | None]] = [{"email": e} for e in existing.values()]
    inputs.insert(1, {"email": "fresh@example.com"})

    results = await make_client(fake.handler, time_).batch_create(inputs)

    assert [r.existing_id for r in results] == [*list(existing)[:1], None, *list(existing)[1:]]
    assert results[1].success
    assert len(fake.contacts) == 4
    assert len(fake.calls("/crm/v3/objects/contacts/batch/create")) == 4


async def test_batch_create_409_matches_additional_email(
    fake: MockHubSpot, time_: FakeTime
) -> None:
    owner = fake.add("primary@example.com", hs_additional_emails="alias@example.com")
    inputs: list[dict[str, str | None]] = [
        {"email": "new@example.com"},
        {"email": "alias@example.com"},
    ]

    results = await make_client(fake.handler, time_).batch_create(inputs)

    assert results[0].success
    assert results[1].existing_id == owner
    assert len(fake.contacts) == 2


async def test_batch_create_sends_a_repeated_email_once(fake: MockHubSpot, time_: FakeTime) -> None:
    inputs: list[dict[str, str | None]] = [
        {"email": "twice@example.com"},
        {"firstname": "No email"},
        {"email": "TWICE@example.com"},
    ]

    results = await make_client(fake.handler, time_).batch_create(inputs)

    assert results[0].success and results[1].success
    assert results[2].existing_id == results[0].id and not results[2].success
    assert len(fake.contacts) == 2


async def test_batch_create_207_maps_errors_by_trace_id(time_: FakeTime) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            207,
            json={
                "status": "COMPLETE",
                "results": [
                    {"id": "11", "properties": {"email": "ok@x.io"}, "objectWriteTraceId": "0"}
                ],
                "numErrors": 2,
                "errors": [
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": "Property values were not valid: "
                        '[{"isValid":false,"error":"PROPERTY_DOESNT_EXIST"}]',
                        "context": {"objectWriteTraceId": ["1"]},
                    },
                    {
                        "status": "error",
                        "category": "CONFLICT",
                        "message": "Contact already exists. Existing ID: 77",
                        "context": {"objectWriteTraceId": ["2"]},
                    },
                ],
            },
        )

    results = await make_client(handler, time_).batch_create(
        [{"email": "ok@x.io"}, {"email": "bad@x.io", "nope": "1"}, {"email": "dup@x.io"}]
    )

    assert results[0] == BatchResult(0, True, id="11")
    assert not results[1].success and "PROPERTY_DOESNT_EXIST" in str(results[1].message)
    assert not results[1].transient
    assert results[2].existing_id == "77"


async def test_batch_update_reports_each_input(fake: MockHubSpot, time_: FakeTime) -> None:
    a = fake.add("a@example.com")
    b = fake.add("b@example.com")

    results = await make_client(fake.handler, time_).batch_update(
        [(a, {"firstname": "A"}), ("404404", {"firstname": "X"}), (b, {"firstname": ""})]
    )

    assert results[0] == BatchResult(0, True, id=a)
    assert results[2] == BatchResult(2, True, id=b)
    assert not results[1].success and not results[1].transient
    assert "Could not update" in str(results[1].message)
    assert fake.contacts[a]["properties"]["firstname"] == "A"
    body = json.loads(fake.calls("/crm/v3/objects/contacts/batch/update")[0].content)
    assert body["inputs"][0] == {
        "id": a,
        "properties": {"firstname": "A"},
        "objectWriteTraceId": "0",
    }
    with pytest.raises(ValueError):
        await make_client(fake.handler, time_).batch_update([(a, {}), (a, {})])


async def test_batch_update_to_a_taken_email_names_the_owner(
    fake: MockHubSpot, time_: FakeTime
) -> None:
    a = fake.add("a@example.com")
    b = fake.add("b@example.com")
    c = fake.add("c@example.com")

    results = await make_client(fake.handler, time_).batch_update(
        [(a, {"email": "B@example.com"}), (c, {"email": "c@example.com", "firstname": "C"})]
    )

    assert results[0] == BatchResult(
        0, False, message=f"Contact already exists. Existing ID: {b}", existing_id=b
    )
    assert results[1] == BatchResult(1, True, id=c)
    assert fake.contacts[a]["properties"]["email"] == "a@example.com"
    assert fake.contacts[c]["properties"]["firstname"] == "C"


async def test_batch_upsert_by_email_reports_created_flags(
    fake: MockHubSpot, time_: FakeTime
) -> None:
    old = fake.add("old@example.com")
    client = make_client(fake.handler, time_)

    results = await client.batch_upsert_by_email(
        [{"email": "new@example.com", "firstname": "N"}, {"email": "OLD@example.com", "phone": "1"}]
    )

    assert results[1] == BatchResult(1, True, id=old, created=False)
    assert results[0].success and results[0].created is True and results[0].id != old
    body = json.loads(fake.calls("/crm/v3/objects/contacts/batch/upsert")[0].content)
    assert body["inputs"][1]["id"] == "old@example.com"
    assert body["inputs"][1]["idProperty"] == "email"
    with pytest.raises(ValueError):
        await client.batch_upsert_by_email([{"firstname": "no email"}])


# --- errors ------------------------------------------------------------------------------------


async def test_400_is_permanent_with_hubspots_message(time_: FakeTime) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error(
            400,
            "Property values were not valid",
            "VALIDATION_ERROR",
            errors=[{"message": "discount was not a valid number", "code": "INVALID_INTEGER"}],
        )

    with pytest.raises(PermanentError) as caught:
        await make_client(handler, time_).batch_update([("1", {"discount": "x"})])
    assert caught.value.message == (
        "HubSpot 400: VALIDATION_ERROR: Property values were not valid; "
        "discount was not a valid number"
    )


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (502, {}, None),
        (503, {"Retry-After": "7"}, 7.0),
        (423, {}, 2.0),
        (477, {"Retry-After": "60"}, 60.0),
    ],
)
async def test_server_side_failures_are_transient(
    time_: FakeTime, status: int, headers: dict[str, str], retry_after: float | None
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, text="<html>upstream</html>")

    with pytest.raises(TransientError) as caught:
        await make_client(handler, time_).get_contact("1", ["email"])
    assert caught.value.retry_after == retry_after


@pytest.mark.parametrize(
    "failure", [httpx.ReadTimeout("read timed out"), httpx.ConnectError("connection refused")]
)
async def test_timeouts_and_connection_errors_are_transient(
    time_: FakeTime, failure: httpx.TransportError
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    with pytest.raises(TransientError) as caught:
        await make_client(handler, time_).list_contacts(["email"])
    assert_no_secrets(caught.value.message)


async def test_403_is_permanent(time_: FakeTime) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error(403, "This app hasn't been granted all required scopes", "MISSING_SCOPES")

    with pytest.raises(PermanentError, match="MISSING_SCOPES"):
        await make_client(handler, time_).get_contact("1", ["email"])


async def test_static_token_rejected_is_permanent_without_the_token(time_: FakeTime) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error(
            401, f"Authentication credentials not found: {STATIC}", "INVALID_AUTHENTICATION"
        )

    with pytest.raises(PermanentError) as caught:
        await make_client(handler, time_).get_contact("1", ["email"])
    assert caught.value.message.startswith("HubSpot rejected the access token")
    assert_no_secrets(str(caught.value))


# --- rate limits and the budget ----------------------------------------------------------------


def rate_limited(policy: str, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {
            "status": "error",
            "message": f"You have reached your {policy.lower()} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24",
            "policyName": policy,
            "groupName": "publicapi:hapikey-api-calls-ten-secondly:6748263",
        }
        return httpx.Response(429, json=body, headers=headers)

    return handler


async def test_429_ten_secondly_pauses_the_budget_for_the_window(time_: FakeTime) -> None:
    client = make_client(rate_limited("TEN_SECONDLY_ROLLING"), time_)

    with pytest.raises(TransientError) as caught:
        await client.get_contact("1", ["email"])
    assert caught.value.retry_after == 10.0
    assert "TEN_SECONDLY_ROLLING" in caught.value.message

    await client.budget.acquire()
    assert time_.sleeps == [10.0]


async def test_429_honours_retry_after_and_interval_header(time_: FakeTime) -> None:
    client = make_client(rate_limited("TEN_SECONDLY_ROLLING", {"Retry-After": "3"}), time_)
    with pytest.raises(TransientError) as caught:
        await client.get_contact("1", ["email"])
    assert caught.value.retry_after == 3.0

    headers = {
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        "X-HubSpot-RateLimit-Max": "110",
    }
    client = make_client(rate_limited("TEN_SECONDLY_ROLLING", headers), time_)
    with pytest.raises(TransientError) as caught:
        await client.get_contact("1", ["email"])
    assert caught.value.retry_after == 10.0


async def test_429_daily_waits_for_the_next_hour_and_stops_sending(time_: FakeTime) -> None:
    fake = MockHubSpot()
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return rate_limited("DAILY")(request) if len(calls) == 1 else fake.handler(request)

    client = make_client(handler, time_)
    with pytest.raises(TransientError) as caught:
        await client.get_contact("1", ["email"])
    assert caught.value.retry_after == 40 * 60  # NOON is 12:20 UTC

    with pytest.raises(TransientError) as again:
        await client.get_contact("1", ["email"])
    assert again.value.retry_after == pytest.approx(40 * 60)
    assert len(calls) == 1 and time_.sleeps == []


async def test_search_429_pauses_only_searches(time_: FakeTime) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error(
            429, "You have reached your secondly limit.", "RATE_LIMIT", policyName="SECONDLY"
        )

    client = make_client(handler, time_)
    with pytest.raises(TransientError) as caught:
        await client.search_by_emails(["a@x.io"], [])
    assert caught.value.retry_after == 1.0
    await client.budget.acquire()
    assert time_.sleeps == []
    await client.budget.acquire(search=True)
    assert time_.sleeps == [1.0]


async def test_budget_blocks_when_the_window_is_full(time_: FakeTime) -> None:
    budget = RequestBudget(per_window=3, window_seconds=10, clock=time_.clock, sleep=time_.sleep)

    for _ in range(3):
        await budget.acquire()
        time_.now += 1
    assert time_.sleeps == []
    await budget.acquire()  # the first slot (t=1000) frees at t=1010; now is 1003
    assert time_.sleeps == [pytest.approx(7.0)]
    assert time_.now == pytest.approx(1010.0)


async def test_budget_serves_concurrent_callers_within_the_rate(time_: FakeTime) -> None:
    budget = RequestBudget(per_window=10, window_seconds=10, clock=time_.clock, sleep=time_.sleep)
    starts: list[float] = []

    async def one() -> None:
        await budget.acquire()
        starts.append(time_.now)

    await asyncio.gather(*(one() for _ in range(35)))

    starts.sort()
    for i in range(len(starts) - 10):
        assert starts[i + 10] - starts[i] >= 10 - 1e-6
    assert starts[-1] == pytest.approx(1030.0)


async def test_search_lane_allows_five_per_second(time_: FakeTime) -> None:
    budget = RequestBudget(clock=time_.clock, sleep=time_.sleep)
    for _ in range(6):
        await budget.acquire(search=True)
    assert time_.sleeps == [pytest.approx(1.0)]


async def test_budget_daily_cap_raises_until_midnight(time_: FakeTime) -> None:
    budget = RequestBudget(daily_limit=2, clock=time_.clock, sleep=time_.sleep, utcnow=lambda: NOON)
    await budget.acquire()
    await budget.acquire(search=True)
    assert budget.used_today == 2
    with pytest.raises(TransientError) as caught:
        await budget.acquire()
    assert caught.value.retry_after == (11 * 60 + 40) * 60


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("Sat, 28 Nov 2026 12:21:00 GMT", NOON) == 60.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("inf") is None
    assert retry_after_seconds(None) is None


# --- OAuth -------------------------------------------------------------------------------------


async def test_refresh_flow_posts_form_and_renews_before_expiry(
    fake: MockHubSpot, time_: FakeTime
) -> None:
    contact_id = fake.add("a@example.com")
    client, _ = oauth_client(fake, time_)

    await client.get_contact(contact_id, ["email"])
    await client.get_contact(contact_id, ["email"])
    assert fake.token_forms == [
        {
            "grant_type": "refresh_token",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH,
        }
    ]
    assert fake.requests[-1].headers["Authorization"] == "Bearer oauth-access-1"

    time_.now += 1800 - 61
    await client.get_contact(contact_id, ["email"])
    assert len(fake.token_forms) == 1
    time_.now += 2  # within 60 s of expiry
    await client.get_contact(contact_id, ["email"])
    assert len(fake.token_forms) == 2
    assert fake.requests[-1].headers["Authorization"] == "Bearer oauth-access-2"


async def test_concurrent_401s_share_one_renewal(fake: MockHubSpot, time_: FakeTime) -> None:
    contact_id = fake.add("a@example.com")
    client, _ = oauth_client(fake, time_)
    await client.get_contact(contact_id, ["email"])
    fake.tokens.discard("oauth-access-1")  # revoked early: 401 although not expired

    contacts = await asyncio.gather(*(client.get_contact(contact_id, ["email"]) for _ in range(8)))

    assert all(c is not None and c.id == contact_id for c in contacts)
    assert len(fake.token_forms) == 2


async def test_rotated_refresh_token_is_kept(fake: MockHubSpot, time_: FakeTime) -> None:
    fake.rotate = True
    contact_id = fake.add("a@example.com")
    client, auth = oauth_client(fake, time_)

    await client.get_contact(contact_id, ["email"])
    assert auth.refresh_token == "na1-refresh-token-2"
    time_.now += 1800
    await client.get_contact(contact_id, ["email"])

    assert [f["refresh_token"] for f in fake.token_forms] == [REFRESH, "na1-refresh-token-2"]
    assert auth.refresh_token == "na1-refresh-token-3"


async def test_401_after_renewal_is_permanent(fake: MockHubSpot, time_: FakeTime) -> None:
    fake.tokens.clear()
    original = fake.handler

    def handler(request: httpx.Request) -> httpx.Response:
        response = original(request)
        fake.tokens.clear()  # every issued token is refused
        return response

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    auth = HubSpotAuth.refresh_flow(
        http, api_base=BASE, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token=REFRESH
    )
    client = make_client(handler, time_, auth=auth)

    with pytest.raises(PermanentError) as caught:
        await client.get_contact("1", ["email"])
    assert "even after renewal" in caught.value.message
    assert len(fake.token_forms) == 2
    assert_no_secrets(str(caught.value))


async def test_oauth_invalid_grant_is_permanent_and_secret_free(
    fake: MockHubSpot, time_: FakeTime
) -> None:
    fake.refresh_tokens.clear()
    client, _ = oauth_client(fake, time_)

    with pytest.raises(PermanentError) as caught:
        await client.get_contact("1", ["email"])

    assert caught.value.message == (
        "HubSpot OAuth failed: invalid_grant: refresh token is invalid, expired or revoked"
    )
    assert_no_secrets(str(caught.value))


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(503, text="unavailable"),
        httpx.Response(429, headers={"Retry-After": "5"}, json={"status": "error"}),
        httpx.ConnectError("refused"),
    ],
)
async def test_oauth_outages_are_transient(
    time_: FakeTime, answer: httpx.Response | httpx.TransportError
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    auth = HubSpotAuth.refresh_flow(
        http, api_base=BASE, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token=REFRESH
    )
    with pytest.raises(TransientError) as caught:
        await auth.token()
    assert_no_secrets(str(caught.value))
    if isinstance(answer, httpx.Response) and answer.status_code == 429:
        assert caught.value.retry_after == 5.0


async def test_oauth_error_echoing_a_secret_is_redacted(time_: FakeTime) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401,
            json={"error": "invalid_client", "error_description": f"bad secret {CLIENT_SECRET}"},
        )

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    auth = HubSpotAuth.refresh_flow(
        http, api_base=BASE, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token=REFRESH
    )
    with pytest.raises(PermanentError) as caught:
        await auth.token()
    assert caught.value.message == "HubSpot OAuth failed: invalid_client: bad secret [redacted]"


async def test_static_auth_cannot_renew() -> None:
    auth = HubSpotAuth.static(STATIC)
    assert await auth.token() == STATIC and not auth.renewable
    with pytest.raises(PermanentError):
        await auth.renew(STATIC)


def test_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ACCESS_TOKEN", "CLIENT_ID", "CLIENT_SECRET", "REFRESH_TOKEN"):
        monkeypatch.delenv(f"SYNCGATE_HUBSPOT_{name}", raising=False)
    http = httpx.AsyncClient()
    assert HubSpotClient.from_settings(Settings(_env_file=None), http) is None
    static = Settings(_env_file=None, hubspot_access_token=STATIC)
    assert HubSpotClient.from_settings(static, http) is not None
    refresh = Settings(
        _env_file=None,
        hubspot_access_token=STATIC,
        hubspot_client_id=CLIENT_ID,
        hubspot_client_secret=CLIENT_SECRET,
        hubspot_refresh_token=REFRESH,
    )
    auth = HubSpotAuth.from_settings(refresh, http)
    assert auth is not None and auth.renewable
    half = Settings(_env_file=None, hubspot_client_id=CLIENT_ID)
    assert HubSpotAuth.from_settings(half, http) is None


# --- against the fake HubSpot server (tests/fakes/hubspot.py) -----------------------------------

needs_fake = pytest.mark.skipif(FakeHubSpot is None, reason="fake HubSpot server not available")


@pytest.fixture
async def served() -> AsyncIterator[tuple[FakeHubSpot, FakeServer, httpx.AsyncClient]]:
    hs = FakeHubSpot(access_token=None, search_lag=30.0)
    with running(create_hubspot_app(hs)) as server:
        async with httpx.AsyncClient(timeout=10) as http:
            yield hs, server, http


def served_client(
    hs: FakeHubSpot, server: FakeServer, http: httpx.AsyncClient
) -> tuple[HubSpotClient, HubSpotAuth]:
    auth = HubSpotAuth.refresh_flow(
        http,
        api_base=server.url,
        client_id=hs.client_id,
        client_secret=hs.client_secret,
        refresh_token=str(hs.refresh_token),
    )
    return HubSpotClient(auth, http, server.url), auth


@needs_fake
async def test_fake_server_create_never_duplicates(
    served: tuple[FakeHubSpot, FakeServer, httpx.AsyncClient],
) -> None:
    hs, server, http = served
    taken = hs.add_contact(email="taken@example.com", firstname="Old")
    client, _ = served_client(hs, server, http)
    inputs: list[dict[str, str | None]] = [
        {"email": "new1@example.com", "firstname": "One"},
        {"email": "Taken@Example.com", "firstname": "Dup"},
        {"email": "new2@example.com", "lastname": "Two"},
    ]

    first = await client.batch_create(inputs)
    again = await client.batch_create(inputs)

    assert first[1].existing_id == taken and not first[1].success
    assert first[0].success and first[2].success
    assert [r.existing_id for r in again] == [first[0].id, taken, first[2].id]
    emails = sorted(p["email"] for p in hs.contacts.values())
    assert emails == ["new1@example.com", "new2@example.com", "taken@example.com"]
    created = {r.id: inputs[r.index]["email"] for r in first if r.success}
    assert {i: hs.contacts[str(i)]["email"] for i in created} == created


@needs_fake
async def test_fake_server_oauth_renews_on_401_and_upserts(
    served: tuple[FakeHubSpot, FakeServer, httpx.AsyncClient],
) -> None:
    hs, server, http = served
    old = hs.add_contact(email="old@example.com")
    client, _ = served_client(hs, server, http)
    assert (await client.get_contact(old, ["email"])) is not None

    hs.expire_tokens()  # early expiry: the first call gets 401, renews once, and repeats
    results = await client.batch_upsert_by_email(
        [{"email": "old@example.com", "firstname": "O"}, {"email": "fresh@example.com"}]
    )

    assert results[0] == BatchResult(0, True, id=old, created=False)
    assert results[1].success and results[1].created is True
    page, after = await client.list_contacts(["email", "firstname"], limit=1)
    assert len(page) == 1 and after is not None
    assert hs.contacts[old]["firstname"] == "O"

    hs.rate_limit_next(policy="DAILY", retry_after=120)
    with pytest.raises(TransientError) as caught:
        await client.get_contact(old, ["email"])
    assert caught.value.retry_after == 120.0

    calls = len(hs.requests)
    with pytest.raises(TransientError, match="paused"):
        await client.get_contact(old, ["email"])  # held back locally: HubSpot is not hit again
    assert len(hs.requests) == calls

    client, _ = served_client(hs, server, http)
    hs.revoke_refresh_token()
    with pytest.raises(HubSpotError) as failed:
        await client.get_contact(old, ["email"])
    assert "refresh token is invalid" in failed.value.message
    assert_no_secrets(failed.value.message)
