"""`POST /webhooks/hubspot` (CONTRACT.md §3, §4): signatures, bodies, dedup, limits, outages."""

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.config import Settings
from syncgate.inbox.models import InboxEvent
from syncgate.main import create_app
from syncgate.platforms.hubspot.signature import (
    HEADER_SIGNATURE,
    HEADER_SIGNATURE_V3,
    HEADER_SIGNATURE_VERSION,
    HEADER_TIMESTAMP,
    sign_v1,
    sign_v2,
    sign_v3,
    signed_headers,
)

SECRET = "hubspot-client-secret-for-tests"
PATH = "/webhooks/hubspot"
REQUEST_URL = f"http://testserver{PATH}"
PUBLIC_URL = "https://sync.example.com"
UNREACHABLE_DATABASE = "postgresql://postgres@127.0.0.1:1/syncgate"

Event = dict[str, Any]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def compact(events: Any) -> bytes:
    """JSON exactly as HubSpot sends it: no spaces."""
    return json.dumps(events, separators=(",", ":")).encode()


def property_change(**overrides: Any) -> Event:
    """The official webhooks-guide example event (reference/hubspot.md §1.5), wire key names."""
    event: Event = {
        "objectId": 1246965,
        "propertyName": "lifecyclestage",
        "propertyValue": "subscriber",
        "changeSource": "ACADEMY",
        "eventId": 3816279340,
        "subscriptionId": 25,
        "portalId": 33,
        "appId": 1160452,
        "occurredAt": 1462216307945,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
    }
    return event | overrides


def creation(**overrides: Any) -> Event:
    event: Event = {
        "objectId": 1246978,
        "changeSource": "IMPORT",
        "eventId": 3816279480,
        "subscriptionId": 22,
        "portalId": 33,
        "appId": 1160452,
        "occurredAt": 1462216307945,
        "subscriptionType": "contact.creation",
        "attemptNumber": 0,
    }
    return event | overrides


# Captured deliveries, byte for byte (reference/hubspot.md §1.3, §1.5).
OBSERVED_DEAL_CREATION = (
    b'[{"eventId":1030198139,"subscriptionId":4578255,"portalId":242711451,"appId":19635961,'
    b'"occurredAt":1769081993375,"subscriptionType":"deal.creation","attemptNumber":0,'
    b'"objectId":267448862446,"changeFlag":"CREATED","changeSource":"CRM_UI",'
    b'"sourceId":"userId:52530071"}]'
)
V1_EXAMPLE_BODY = (
    b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,'
    b'"changeSource":"CRM","changeFlag":"NEW","appId":54321}]'
)
DELETION_BODY = (
    b'[{"objectId":10851,"changeFlag":"DELETED","changeSource":"IMPORT","eventId":3812562495,'
    b'"subscriptionId":3452,"portalId":3088964,"appId":39543,"occurredAt":1494261018940,'
    b'"subscriptionType":"contact.deletion","attemptNumber":0}]'
)
MERGE_BODY = (
    b'[{"eventId":100,"subscriptionId":60,"portalId":33,"appId":1160452,'
    b'"occurredAt":1715050000000,"subscriptionType":"contact.merge","attemptNumber":0,'
    b'"objectId":100,"changeSource":"CRM_UI","primaryObjectId":100,"mergedObjectIds":[200],'
    b'"newObjectId":100,"numberOfPropertiesMoved":14}]'
)


@asynccontextmanager
async def serving(config: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with `config`, started through its real lifespan (as the `client` fixture)."""
    app = create_app(config, run_worker=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        yield http


@pytest.fixture
def hubspot_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"hubspot_client_secret": SECRET})


@pytest.fixture
async def hubspot(hubspot_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(hubspot_settings) as http:
        yield http


async def post(
    http: httpx.AsyncClient,
    body: bytes,
    *,
    headers: dict[str, str] | None = None,
    url: str = REQUEST_URL,
    signed_uri: str | None = None,
    secret: str = SECRET,
) -> httpx.Response:
    """POST `body`; signed the way HubSpot signs CRM webhooks unless `headers` are given."""
    if headers is None:
        headers = signed_headers(secret, "POST", signed_uri or url, body, timestamp_ms=now_ms())
    return await http.post(
        url, content=body, headers={"Content-Type": "application/json", **headers}
    )


def v3_headers(
    body: bytes, *, uri: str = REQUEST_URL, timestamp_ms: int | None = None
) -> dict[str, str]:
    timestamp = now_ms() if timestamp_ms is None else timestamp_ms
    return {
        HEADER_SIGNATURE_V3: sign_v3(SECRET, "POST", uri, body, timestamp),
        HEADER_TIMESTAMP: str(timestamp),
    }


def v1_headers(body: bytes, *, version: str | None = "v1") -> dict[str, str]:
    headers = {HEADER_SIGNATURE: sign_v1(SECRET, body)}
    if version is not None:
        headers[HEADER_SIGNATURE_VERSION] = version
    return headers


def v2_headers(body: bytes, *, uri: str = REQUEST_URL) -> dict[str, str]:
    return {
        HEADER_SIGNATURE: sign_v2(SECRET, "POST", uri, body),
        HEADER_SIGNATURE_VERSION: "v2",
    }


def hmac_v3(secret: str, source: str) -> str:
    """v3 computed from scratch (independent of app code): base64 HMAC-SHA256 of the string."""
    digest = hmac.new(secret.encode(), source.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


async def stored(
    session_factory: async_sessionmaker[AsyncSession],
) -> list[InboxEvent]:
    async with session_factory() as session:
        return list((await session.scalars(select(InboxEvent).order_by(InboxEvent.id))).all())


async def stored_payloads(session_factory: async_sessionmaker[AsyncSession]) -> list[Event]:
    return [row.payload for row in await stored(session_factory)]


def assert_ack(response: httpx.Response, accepted: int, duplicates: int) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"accepted": accepted, "duplicates": duplicates}


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]


_SAMPLE = re.compile(r"^syncgate_webhook_events_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


async def webhook_counts(http: httpx.AsyncClient) -> dict[str, float]:
    """`syncgate_webhook_events_total{source="hubspot"}` by outcome, read from /metrics."""
    counts: dict[str, float] = {}
    for line in (await http.get("/metrics")).text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("source") == "hubspot":
            counts[labels["outcome"]] = float(match["value"])
    return counts


def moved(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


# --- accepted and stored --------------------------------------------------------------------


async def test_signed_events_are_stored_with_their_raw_payload(
    hubspot: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    events = [property_change(), creation()]
    response = await post(hubspot, compact(events))
    assert_ack(response, accepted=2, duplicates=0)

    rows = await stored(session_factory)
    assert [row.payload for row in rows] == events
    assert all(row.source == "hubspot" for row in rows)
    assert [row.kind for row in rows] == ["contact.propertyChange", "contact.creation"]
    assert [row.object_key for row in rows] == ["hubspot:1246965", "hubspot:1246978"]
    assert [row.occurred_at_ms for row in rows] == [1462216307945, 1462216307945]
    assert all(row.status == "pending" for row in rows)


@pytest.mark.parametrize(
    "body",
    [V1_EXAMPLE_BODY, DELETION_BODY, MERGE_BODY],
    ids=["creation", "deletion", "merge"],
)
async def test_captured_bodies_are_stored_verbatim(
    hubspot: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    body: bytes,
) -> None:
    assert_ack(await post(hubspot, body), accepted=1, duplicates=0)
    assert await stored_payloads(session_factory) == json.loads(body)


async def test_unsupported_subscription_types_are_acknowledged(
    hubspot: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    body = OBSERVED_DEAL_CREATION[:-1] + b"," + compact([creation(subscriptionType="x.y")])[1:]
    assert_ack(await post(hubspot, body), accepted=2, duplicates=0)
    assert [row.kind for row in await stored(session_factory)] == ["deal.creation", "x.y"]


async def test_the_documented_event_type_key_is_understood(
    hubspot: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    # HubSpot's own guide example says `eventType` where deliveries say `subscriptionType`.
    event = property_change()
    event["eventType"] = event.pop("subscriptionType")
    assert_ack(await post(hubspot, compact([event])), accepted=1, duplicates=0)
    (row,) = await stored(session_factory)
    assert row.kind == "contact.propertyChange"
    assert row.payload == event


async def test_an_empty_array_is_acknowledged(
    hubspot: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    assert_ack(await post(hubspot, b"[]"), accepted=0, duplicates=0)
    assert await stored(session_factory) == []


async def test_a_thousand_events_are_accepted(
    hubspot: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    events = [property_change(objectId=n) for n in range(1000)]
    assert_ack(await post(hubspot, compact(events)), accepted=1000, duplicates=0)
    assert len(await stored(session_factory)) == 1000


# --- duplicates -----------------------------------------------------------------------------


async def test_a_redelivery_with_a_higher_attempt_number_is_a_duplicate(
    hubspot: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    assert_ack(await post(hubspot, compact([property_change()])), 1, 0)
    for attempt in (1, 2, 9):
        redelivery = compact([property_change(attemptNumber=attempt)])
        assert_ack(await post(hubspot, redelivery), accepted=0, duplicates=1)
    # The exact same request again.
    assert_ack(await post(hubspot, compact([property_change()])), accepted=0, duplicates=1)
    assert await stored_payloads(session_factory) == [property_change()]


async def test_a_batch_mixing_new_and_redelivered_events(
    hubspot: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    assert_ack(await post(hubspot, compact([property_change()])), 1, 0)
    batch = [creation(), property_change(attemptNumber=3), property_change(objectId=7)]
    assert_ack(await post(hubspot, compact(batch)), accepted=2, duplicates=1)
    assert len(await stored(session_factory)) == 3


@pytest.mark.parametrize(
    "other",
    [
        {"objectId": 999},
        {"subscriptionId": 26},
        {"subscriptionType": "contact.deletion"},
        {"propertyName": "email", "propertyValue": "a@example.com"},
        {"portalId": 34},
        {"occurredAt": 1462216307946},
    ],
    ids=["objectId", "subscriptionId", "subscriptionType", "propertyName", "portal", "time"],
)
async def test_the_same_event_id_can_name_distinct_events(
    hubspot: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    other: Event,
) -> None:
    # "eventId ... This value is not guaranteed to be unique." (one change fans out).
    first, second = property_change(), property_change(**other)
    assert first["eventId"] == second["eventId"]
    assert_ack(await post(hubspot, compact([first])), accepted=1, duplicates=0)
    assert_ack(await post(hubspot, compact([second])), accepted=1, duplicates=0)
    assert await stored_payloads(session_factory) == [first, second]


async def test_the_same_event_id_twice_in_one_body(
    hubspot: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    events = [property_change(), property_change(propertyName="firstname", propertyValue="A")]
    assert_ack(await post(hubspot, compact(events)), accepted=2, duplicates=0)
    assert len(await stored(session_factory)) == 2


async def test_duplicates_inside_one_body(
    hubspot: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    events = [
        property_change(),
        creation(),
        property_change(),
        property_change(attemptNumber=1),
        creation(),
    ]
    assert_ack(await post(hubspot, compact(events)), accepted=2, duplicates=3)
    assert await stored_payloads(session_factory) == [property_change(), creation()]


async def test_concurrent_redeliveries_store_one_event(
    hubspot: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    bodies = [compact([property_change(attemptNumber=n), creation()]) for n in range(6)]
    responses = await asyncio.gather(*(post(hubspot, body) for body in bodies))
    for response in responses:
        assert response.status_code == 200, response.text
    acks = [response.json() for response in responses]
    assert sum(ack["accepted"] for ack in acks) == 2
    assert sum(ack["duplicates"] for ack in acks) == 10
    assert len(await stored(session_factory)) == 2


async def test_key_order_and_spacing_do_not_make_a_redelivery_new(
    hubspot: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    assert_ack(await post(hubspot, compact([property_change()])), 1, 0)
    reordered = dict(reversed(list(property_change(attemptNumber=1).items())))
    body = json.dumps([reordered], indent=1).encode()
    assert_ack(await post(hubspot, body), accepted=0, duplicates=1)
    assert len(await stored(session_factory)) == 1


# --- signatures -----------------------------------------------------------------------------


async def test_v3_alone_is_accepted(hubspot: httpx.AsyncClient) -> None:
    body = compact([creation()])
    assert_ack(await post(hubspot, body, headers=v3_headers(body)), 1, 0)


async def test_v3_is_checked_against_an_independent_computation(
    hubspot: httpx.AsyncClient,
) -> None:
    body = compact([creation()])
    timestamp = str(now_ms())
    signature = hmac_v3(SECRET, "POST" + REQUEST_URL + body.decode() + timestamp)
    headers = {HEADER_SIGNATURE_V3: signature, HEADER_TIMESTAMP: timestamp}
    assert_ack(await post(hubspot, body, headers=headers), 1, 0)


async def test_v1_alone_is_accepted(hubspot: httpx.AsyncClient) -> None:
    body = compact([creation()])
    assert_ack(await post(hubspot, body, headers=v1_headers(body)), 1, 0)


async def test_v1_without_a_version_header_is_read_as_v1(hubspot: httpx.AsyncClient) -> None:
    body = compact([creation()])
    assert_ack(await post(hubspot, body, headers=v1_headers(body, version=None)), 1, 0)


async def test_v1_matches_hubspots_published_vector() -> None:
    # reference/hubspot.md §2.2: the fixture helper is the published algorithm.
    assert (
        sign_v1("yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", V1_EXAMPLE_BODY)
        == "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
    )


async def test_only_v3_is_accepted_when_required(hubspot_settings: Settings) -> None:
    body = compact([creation()])
    config = hubspot_settings.model_copy(update={"hubspot_require_v3": True})
    async with serving(config) as http:
        for legacy in (v1_headers(body), v2_headers(body)):
            response = await post(http, body, headers=legacy)
            assert response.status_code == 401
            assert response.json()["message"] == (
                "HubSpot signature rejected: missing v3 signature (only v3 is accepted)"
            )
        assert_ack(await post(http, body), 1, 0)  # what HubSpot sends: v3 and v1


async def test_v2_alone_is_accepted(hubspot: httpx.AsyncClient) -> None:
    body = compact([creation()])
    assert_ack(await post(hubspot, body, headers=v2_headers(body)), 1, 0)


async def test_v2_covers_the_uri_with_its_query_as_sent(hubspot: httpx.AsyncClient) -> None:
    body = compact([creation()])
    url = f"{REQUEST_URL}?portal=62515&tag=a%3Ab"
    ok = await post(hubspot, body, url=url, headers=v2_headers(body, uri=url))
    assert_ack(ok, 1, 0)
    wrong_uri = f"{REQUEST_URL}?portal=62515&tag=a:b"  # v2 does not decode
    bad = await post(hubspot, body, url=url, headers=v2_headers(body, uri=wrong_uri))
    assert_error(bad, 401, "invalid_signature")


async def test_v3_is_preferred_over_a_correct_v1(hubspot: httpx.AsyncClient) -> None:
    body = compact([creation()])
    headers = v1_headers(body) | v3_headers(compact([property_change()]))
    assert headers[HEADER_SIGNATURE_VERSION] == "v1"
    assert_error(await post(hubspot, body, headers=headers), 401, "invalid_signature")


async def test_v3_is_preferred_over_a_correct_v2(hubspot: httpx.AsyncClient) -> None:
    body = compact([creation()])
    headers = v2_headers(body) | {
        HEADER_SIGNATURE_V3: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        HEADER_TIMESTAMP: str(now_ms()),
    }
    assert_error(await post(hubspot, body, headers=headers), 401, "invalid_signature")


async def test_a_correct_v3_wins_over_a_wrong_v1(hubspot: httpx.AsyncClient) -> None:
    body = compact([creation()])
    headers = v3_headers(body) | {
        HEADER_SIGNATURE: "0" * 64,
        HEADER_SIGNATURE_VERSION: "v1",
    }
    assert_ack(await post(hubspot, body, headers=headers), 1, 0)


async def test_v3_without_a_timestamp_is_refused(hubspot: httpx.AsyncClient) -> None:
    body = compact([creation()])
    headers = v3_headers(body) | v1_headers(body)
    del headers[HEADER_TIMESTAMP]
    assert_error(await post(hubspot, body, headers=headers), 401, "invalid_signature")


@pytest.mark.parametrize(
    ("age_ms", "status"),
    [
        (4 * 60_000, 200),
        (5 * 60_000 - 2_000, 200),
        (5 * 60_000 + 2_000, 401),
        (60 * 60_000, 401),
        (-(60_000 - 2_000), 200),
        (-(60_000 + 2_000), 401),
        (-(60 * 60_000), 401),
    ],
    ids=["4min-old", "just-under-5min", "just-over-5min", "1h-old", "59s-ahead", "61s-ahead", "1h"],
)
async def test_the_v3_timestamp_window(
    hubspot: httpx.AsyncClient, age_ms: int, status: int
) -> None:
    body = compact([creation()])
    headers = v3_headers(body, timestamp_ms=now_ms() - age_ms) | v1_headers(body)
    response = await post(hubspot, body, headers=headers)
    if status == 200:
        assert_ack(response, 1, 0)
    else:
        assert_error(response, 401, "invalid_signature")


@pytest.mark.parametrize("timestamp", ["", "abc", "1.7e12", str(now_ms() // 1000)])
async def test_unusable_v3_timestamps_are_refused(
    hubspot: httpx.AsyncClient, timestamp: str
) -> None:
    body = compact([creation()])
    headers = {
        HEADER_SIGNATURE_V3: hmac_v3(SECRET, "POST" + REQUEST_URL + body.decode() + timestamp),
        HEADER_TIMESTAMP: timestamp,
    }
    assert_error(await post(hubspot, body, headers=headers), 401, "invalid_signature")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {HEADER_SIGNATURE_VERSION: "v1"},
        {HEADER_SIGNATURE: "", HEADER_SIGNATURE_VERSION: "v1"},
        {HEADER_SIGNATURE: "0" * 64, HEADER_SIGNATURE_VERSION: "v1"},
        {HEADER_SIGNATURE: "0" * 64, HEADER_SIGNATURE_VERSION: "v2"},
        {HEADER_SIGNATURE: "0" * 64, HEADER_SIGNATURE_VERSION: "v9"},
        {HEADER_SIGNATURE_V3: "", HEADER_TIMESTAMP: "1"},
        {HEADER_SIGNATURE_V3: "bm90IGEgc2lnbmF0dXJl", HEADER_TIMESTAMP: str(now_ms())},
    ],
    ids=[
        "none",
        "version-only",
        "empty",
        "wrong-v1",
        "wrong-v2",
        "unknown-version",
        "empty-v3",
        "wrong-v3",
    ],
)
async def test_missing_or_wrong_signatures_are_refused(
    hubspot: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    headers: dict[str, str],
) -> None:
    if HEADER_TIMESTAMP in headers and headers[HEADER_TIMESTAMP] != "1":
        headers = headers | {HEADER_TIMESTAMP: str(now_ms())}
    response = await post(hubspot, compact([creation()]), headers=headers)
    assert_error(response, 401, "invalid_signature")
    assert await stored(session_factory) == []


@pytest.mark.parametrize("header", [HEADER_SIGNATURE_V3, HEADER_SIGNATURE])
async def test_a_non_ascii_signature_is_refused(hubspot: httpx.AsyncClient, header: str) -> None:
    body = compact([creation()])
    headers = {header.encode(): "sha256=é".encode(), HEADER_TIMESTAMP.encode(): b"%d" % now_ms()}
    response = await hubspot.post(REQUEST_URL, content=body, headers=headers)
    assert_error(response, 401, "invalid_signature")


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
async def test_a_signature_made_with_another_secret_is_refused(
    hubspot: httpx.AsyncClient, version: str
) -> None:
    body = compact([creation()])
    other = "some-other-app-secret"
    headers = {
        "v1": {HEADER_SIGNATURE: sign_v1(other, body), HEADER_SIGNATURE_VERSION: "v1"},
        "v2": {
            HEADER_SIGNATURE: sign_v2(other, "POST", REQUEST_URL, body),
            HEADER_SIGNATURE_VERSION: "v2",
        },
        "v3": {
            HEADER_SIGNATURE_V3: sign_v3(other, "POST", REQUEST_URL, body, now_ms()),
            HEADER_TIMESTAMP: str(now_ms()),
        },
    }[version]
    assert_error(await post(hubspot, body, headers=headers), 401, "invalid_signature")


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
async def test_the_raw_body_is_verified_not_a_reserialisation(
    hubspot: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    version: str,
) -> None:
    events = [property_change()]
    signed_body = compact(events)
    sent_body = json.dumps(events).encode()  # same JSON, default ", " / ": " spacing
    assert json.loads(sent_body) == json.loads(signed_body) and sent_body != signed_body
    headers = {
        "v1": v1_headers(signed_body),
        "v2": v2_headers(signed_body),
        "v3": v3_headers(signed_body),
    }[version]
    assert_error(await post(hubspot, sent_body, headers=headers), 401, "invalid_signature")
    # …and the body as sent, spaces included, is what verifies.
    resigned = {
        "v1": v1_headers(sent_body),
        "v2": v2_headers(sent_body),
        "v3": v3_headers(sent_body),
    }[version]
    assert_ack(await post(hubspot, sent_body, headers=resigned), 1, 0)
    assert await stored_payloads(session_factory) == events


async def test_v3_covers_the_method_and_path(hubspot: httpx.AsyncClient) -> None:
    body = compact([creation()])
    timestamp = now_ms()
    for uri in (f"{REQUEST_URL}/", "http://testserver/webhooks/salesforce"):
        headers = v3_headers(body, uri=uri, timestamp_ms=timestamp)
        assert_error(await post(hubspot, body, headers=headers), 401, "invalid_signature")
    headers = {
        HEADER_SIGNATURE_V3: sign_v3(SECRET, "PUT", REQUEST_URL, body, timestamp),
        HEADER_TIMESTAMP: str(timestamp),
    }
    assert_error(await post(hubspot, body, headers=headers), 401, "invalid_signature")


# --- the signed URI: SYNCGATE_PUBLIC_URL, or the request URL ------------------------------


@pytest.fixture
async def behind_proxy(hubspot_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    config = hubspot_settings.model_copy(update={"public_url": PUBLIC_URL})
    async with serving(config) as http:
        yield http


async def test_v3_uses_the_public_url_and_decodes_the_table_escapes(
    behind_proxy: httpx.AsyncClient,
) -> None:
    body = compact([creation()])
    timestamp = str(now_ms())
    # HubSpot decodes %3A to ":" before signing; computed here without the app's code.
    source = "POST" + f"{PUBLIC_URL}{PATH}?x=:1" + body.decode() + timestamp
    headers = {HEADER_SIGNATURE_V3: hmac_v3(SECRET, source), HEADER_TIMESTAMP: timestamp}
    response = await post(behind_proxy, body, url=f"{REQUEST_URL}?x=%3A1", headers=headers)
    assert_ack(response, 1, 0)


async def test_v3_with_the_still_encoded_uri_is_refused(behind_proxy: httpx.AsyncClient) -> None:
    body = compact([creation()])
    timestamp = str(now_ms())
    source = "POST" + f"{PUBLIC_URL}{PATH}?x=%3A1" + body.decode() + timestamp
    headers = {HEADER_SIGNATURE_V3: hmac_v3(SECRET, source), HEADER_TIMESTAMP: timestamp}
    response = await post(behind_proxy, body, url=f"{REQUEST_URL}?x=%3A1", headers=headers)
    assert_error(response, 401, "invalid_signature")


async def test_v3_decodes_all_twelve_sequences_and_nothing_else(
    behind_proxy: httpx.AsyncClient,
) -> None:
    body = compact([creation()])
    query = "a=%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B&b=%20%2B%26%3a%25"
    decoded = "a=:/?@!$'()*,;&b=%20%2B%26%3a%25"
    timestamp = str(now_ms())
    source = "POST" + f"{PUBLIC_URL}{PATH}?{decoded}" + body.decode() + timestamp
    headers = {HEADER_SIGNATURE_V3: hmac_v3(SECRET, source), HEADER_TIMESTAMP: timestamp}
    response = await post(behind_proxy, body, url=f"{REQUEST_URL}?{query}", headers=headers)
    assert_ack(response, 1, 0)


async def test_with_a_public_url_the_request_url_is_not_what_is_signed(
    behind_proxy: httpx.AsyncClient,
) -> None:
    body = compact([creation()])
    url = f"{REQUEST_URL}?x=%3A1"
    assert_error(await post(behind_proxy, body, url=url), 401, "invalid_signature")
    ok = await post(behind_proxy, body, url=url, signed_uri=f"{PUBLIC_URL}{PATH}?x=%3A1")
    assert_ack(ok, 1, 0)


async def test_v2_uses_the_public_url_as_sent(behind_proxy: httpx.AsyncClient) -> None:
    body = compact([creation()])
    url = f"{REQUEST_URL}?x=%3A1"
    headers = v2_headers(body, uri=f"{PUBLIC_URL}{PATH}?x=%3A1")
    assert_ack(await post(behind_proxy, body, url=url, headers=headers), 1, 0)


@pytest.mark.parametrize(
    "public_url",
    ["https://sync.example.com/", "https://SYNC.example.com", "https://sync.example.com:443"],
)
@pytest.mark.parametrize("how", ["validated", "copied"])
async def test_equivalent_spellings_of_the_public_url(
    hubspot_settings: Settings, public_url: str, how: str
) -> None:
    # The settings normalise the URL (lower-case host, no default port, one "/").
    if how == "validated":
        config = Settings(
            **(hubspot_settings.model_dump() | {"public_url": public_url}), _env_file=None
        )
    else:
        config = hubspot_settings.model_copy(update={"public_url": public_url})
    body = compact([creation()])
    async with serving(config) as http:
        response = await post(http, body, signed_uri=f"{PUBLIC_URL}{PATH}")
        assert_ack(response, 1, 0)


async def test_a_public_url_with_a_path_prefix(hubspot_settings: Settings) -> None:
    config = hubspot_settings.model_copy(update={"public_url": f"{PUBLIC_URL}/syncgate/"})
    body = compact([creation()])
    async with serving(config) as http:
        response = await post(http, body, signed_uri=f"{PUBLIC_URL}/syncgate{PATH}")
        assert_ack(response, 1, 0)


async def test_a_public_url_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("SYNCGATE_PUBLIC_URL", PUBLIC_URL)
    monkeypatch.setenv("SYNCGATE_HUBSPOT_CLIENT_SECRET", SECRET)
    config = Settings(database_url=database_url, _env_file=None)
    body = compact([creation()])
    async with serving(config) as http:
        url = f"{REQUEST_URL}?x=%3A1"
        assert_ack(await post(http, body, url=url, signed_uri=f"{PUBLIC_URL}{PATH}?x=%3A1"), 1, 0)


async def test_without_a_public_url_the_request_url_is_signed(
    hubspot: httpx.AsyncClient,
) -> None:
    body = compact([creation()])
    timestamp = str(now_ms())
    source = "POST" + f"{REQUEST_URL}?x=:1" + body.decode() + timestamp
    headers = {HEADER_SIGNATURE_V3: hmac_v3(SECRET, source), HEADER_TIMESTAMP: timestamp}
    assert_ack(await post(hubspot, body, url=f"{REQUEST_URL}?x=%3A1", headers=headers), 1, 0)
    public = await post(
        hubspot,
        compact([property_change()]),
        url=f"{REQUEST_URL}?x=%3A1",
        signed_uri=f"{PUBLIC_URL}{PATH}?x=%3A1",
    )
    assert_error(public, 401, "invalid_signature")


async def test_without_a_public_url_the_host_and_port_are_signed(
    hubspot_settings: Settings,
) -> None:
    app = create_app(hubspot_settings, run_worker=False)
    body = compact([creation()])
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://hooks.example.org:8443"
        ) as http,
    ):
        url = f"https://hooks.example.org:8443{PATH}"
        assert_ack(await post(http, body, url=url), 1, 0)
        wrong = await post(
            http,
            compact([property_change()]),
            url=url,
            signed_uri=f"https://hooks.example.org{PATH}",
        )
        assert_error(wrong, 401, "invalid_signature")


async def test_a_percent_encoded_path_is_signed_as_sent(hubspot: httpx.AsyncClient) -> None:
    # %73 is "s": the route matches, and HubSpot signed its target URL exactly as registered.
    body = compact([creation()])
    url = "http://testserver/webhooks/hub%73pot"
    assert_ack(await post(hubspot, body, url=url), 1, 0)
    decoded = await post(hubspot, compact([property_change()]), url=url, signed_uri=REQUEST_URL)
    assert_error(decoded, 401, "invalid_signature")


# --- bodies ---------------------------------------------------------------------------------


def missing(key: str) -> Event:
    event = property_change()
    del event[key]
    return event


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[{]",
        b'{"eventId": 1}',
        compact(property_change()),
        b"null",
        b'"[]"',
        b"[1, 2]",
        b'["contact.creation"]',
        b"[[]]",
        b"[null]",
        compact([property_change(), 5]),
        compact([missing("eventId")]),
        compact([missing("subscriptionType")]),
        compact([missing("objectId")]),
        compact([missing("occurredAt")]),
        compact([missing("portalId")]),
        compact([property_change(), missing("objectId")]),
        compact([property_change(objectId="abc")]),
        compact([property_change(eventId=None)]),
        compact([property_change(occurredAt=-1)]),
        compact([property_change(subscriptionType="")]),
        compact([property_change(subscriptionType="contact.\u0000creation")]),
        compact([property_change(objectId=2**64)]),
        compact([property_change(occurredAt=2**63)]),
        b'[{"eventId":1,"portalId":2,"occurredAt":3,"subscriptionType":"contact.creation",'
        b'"objectId":4,"score":NaN}]',
        b'[{"eventId":1,"portalId":2,"occurredAt":3,"subscriptionType":"contact.creation",'
        b'"objectId":4,"score":1e400}]',
        b'[{"eventId":1,"portalId":2,"occurredAt":3,"subscriptionType":"contact.creation",'
        b'"objectId":4,"propertyValue":"\\ud800"}]',
        "[{}]".encode("utf-16"),
        b"\xff\xfe[]",
        compact([property_change()]) + b" trailing",
    ],
    ids=lambda body: body[:40].decode("latin-1"),
)
async def test_bodies_that_are_not_an_array_of_events_get_400(
    hubspot: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    body: bytes,
) -> None:
    response = await post(hubspot, body)  # correctly signed
    assert_error(response, 400, "bad_request")
    assert await stored(session_factory) == []


async def test_more_than_a_thousand_events_get_400(
    hubspot: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    body = compact([property_change(objectId=n) for n in range(1001)])
    response = await post(hubspot, body)
    assert_error(response, 400, "bad_request")
    assert "1000" in response.json()["message"]
    assert await stored(session_factory) == []


async def test_one_bad_event_refuses_the_whole_body(
    hubspot: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    body = compact([creation(), property_change(), missing("eventId")])
    response = await post(hubspot, body)
    assert_error(response, 400, "bad_request")
    assert "[2]" in response.json()["message"]
    assert await stored(session_factory) == []


async def test_the_signature_is_checked_before_the_body(hubspot: httpx.AsyncClient) -> None:
    assert_error(await post(hubspot, b"not json", headers={}), 401, "invalid_signature")


async def test_unicode_and_nul_in_values_are_stored(
    hubspot: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    event = property_change(propertyName="firstname", propertyValue="Zoë 😀 \u0000 end")
    assert_ack(await post(hubspot, json.dumps([event]).encode()), 1, 0)
    assert await stored_payloads(session_factory) == [event]


# --- disabled intake ------------------------------------------------------------------------


async def test_404_without_a_client_secret(settings: Settings) -> None:
    assert settings.hubspot_client_secret is None
    body = compact([creation()])
    async with serving(settings) as http:
        response = await post(http, body)
        assert_error(response, 404, "not_found")
        assert_error(await post(http, body, headers={}), 404, "not_found")


@pytest.mark.parametrize("blank", ["", "   "])
async def test_a_blank_client_secret_disables_intake(
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
    blank: str,
) -> None:
    config = settings.model_copy(update={"hubspot_client_secret": blank})
    body = compact([creation()])
    # What an attacker can compute when the key is empty.
    timestamp = str(now_ms())
    forged = {
        HEADER_SIGNATURE_V3: base64.b64encode(
            hmac.new(
                blank.encode(),
                ("POST" + REQUEST_URL + body.decode() + timestamp).encode(),
                hashlib.sha256,
            ).digest()
        ).decode(),
        HEADER_TIMESTAMP: timestamp,
    }
    forged_v1 = {
        HEADER_SIGNATURE: hashlib.sha256(blank.encode() + body).hexdigest(),
        HEADER_SIGNATURE_VERSION: "v1",
    }
    async with serving(config) as http:
        assert_error(await post(http, body, headers=forged), 404, "not_found")
        assert_error(await post(http, body, headers=forged_v1), 404, "not_found")
    assert await stored(session_factory) == []


def test_a_blank_client_secret_in_the_environment_is_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYNCGATE_HUBSPOT_CLIENT_SECRET", "")
    assert Settings(_env_file=None).hubspot_client_secret is None


# --- body size ------------------------------------------------------------------------------

LIMIT = 2048


@pytest.fixture
async def small_limit(hubspot_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(hubspot_settings.model_copy(update={"max_body_bytes": LIMIT})) as http:
        yield http


def body_of_size(size: int) -> bytes:
    """A valid one-event body padded to exactly `size` bytes."""
    base = compact([creation(padding="")])
    body = compact([creation(padding="x" * (size - len(base)))])
    assert len(body) == size
    return body


async def test_a_body_at_the_limit_is_accepted(small_limit: httpx.AsyncClient) -> None:
    assert_ack(await post(small_limit, body_of_size(LIMIT)), 1, 0)


async def test_a_body_over_the_limit_gets_413(
    small_limit: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    body = body_of_size(LIMIT + 1)
    response = await post(small_limit, body)  # correctly signed, Content-Length sent
    assert_error(response, 413, "payload_too_large")
    assert await stored(session_factory) == []


async def test_an_unsigned_body_over_the_limit_gets_413(small_limit: httpx.AsyncClient) -> None:
    assert_error(await post(small_limit, b"x" * (LIMIT * 4), headers={}), 413, "payload_too_large")


def chunks(body: bytes, size: int = 500) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def _streamed(body: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks(body):
        yield chunk


async def test_a_chunked_body_over_the_limit_gets_413(
    small_limit: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    body = body_of_size(LIMIT + 1)
    headers = signed_headers(SECRET, "POST", REQUEST_URL, body, timestamp_ms=now_ms())
    request = small_limit.build_request("POST", PATH, content=_streamed(body), headers=headers)
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    response = await small_limit.send(request)
    assert_error(response, 413, "payload_too_large")
    assert await stored(session_factory) == []


async def test_a_chunked_body_within_the_limit_is_accepted(small_limit: httpx.AsyncClient) -> None:
    body = body_of_size(LIMIT)
    headers = signed_headers(SECRET, "POST", REQUEST_URL, body, timestamp_ms=now_ms())
    request = small_limit.build_request("POST", PATH, content=_streamed(body), headers=headers)
    assert "content-length" not in request.headers
    assert_ack(await small_limit.send(request), 1, 0)


async def test_the_default_limit_is_one_mebibyte(hubspot: httpx.AsyncClient) -> None:
    assert Settings(_env_file=None).max_body_bytes == 1_048_576
    assert_error(await post(hubspot, body_of_size(1_048_577)), 413, "payload_too_large")


# --- store outage ---------------------------------------------------------------------------


async def test_503_when_the_database_is_unreachable(hubspot_settings: Settings) -> None:
    config = hubspot_settings.model_copy(update={"database_url": UNREACHABLE_DATABASE})
    async with serving(config) as http:
        before = await webhook_counts(http)
        response = await post(http, compact([creation()]))
        assert_error(response, 503, "store_unavailable")
        assert response.headers["Retry-After"]
        assert moved(before, await webhook_counts(http)) == {"rejected": 1}
        # Verification needs no database: a forged request is still a 401.
        assert_error(await post(http, compact([creation()]), headers={}), 401, "invalid_signature")


# --- metrics --------------------------------------------------------------------------------


async def test_metrics_count_accepted_duplicate_and_rejected(hubspot: httpx.AsyncClient) -> None:
    before = await webhook_counts(hubspot)
    assert set(before) >= {"accepted", "duplicate", "rejected"}

    await post(hubspot, compact([property_change(), creation()]))
    after_first = await webhook_counts(hubspot)
    assert moved(before, after_first) == {"accepted": 2}

    await post(hubspot, compact([property_change(attemptNumber=1), creation(objectId=5)]))
    after_second = await webhook_counts(hubspot)
    assert moved(after_first, after_second) == {"accepted": 1, "duplicate": 1}

    assert_error(await post(hubspot, compact([creation()]), headers={}), 401, "invalid_signature")
    assert_error(await post(hubspot, b"{}"), 400, "bad_request")
    assert moved(after_second, await webhook_counts(hubspot)) == {"rejected": 2}
