"""The inbox store (CONTRACT.md §4): what the intake writes, and how it counts new events.

The count comes from the driver's row count of an `INSERT … ON CONFLICT DO NOTHING`, on a Core
connection (the webhook routes) or a session's connection (workers, tests); both are checked
here on each database, with one row and with an executemany.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from support.reference import SALESFORCE_OUTBOUND_MESSAGE

from syncgate.inbox.models import InboxEvent
from syncgate.inbox.store import store_hubspot_events, store_salesforce_message
from syncgate.platforms.hubspot.events import parse_body
from syncgate.platforms.salesforce.outbound_message import parse_outbound_message

Event = dict[str, Any]
Store = Callable[[list[Event]], Awaitable[int]]


def event(object_id: int, **overrides: Any) -> Event:
    return {
        "eventId": 100 + object_id,
        "subscriptionId": 25,
        "portalId": 33,
        "occurredAt": 1_462_216_307_945,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": object_id,
        "propertyName": "email",
        "propertyValue": f"c{object_id}@example.com",
    } | overrides


@pytest.fixture(params=["connection", "session"])
def store(
    request: pytest.FixtureRequest,
    engine: AsyncEngine,
    session_factory: async_sessionmaker[AsyncSession],
) -> Store:
    """Store events in one transaction, the way the route (or a worker's session) does."""

    async def store(events: list[Event]) -> int:
        parsed = parse_body(json.dumps(events).encode())
        if request.param == "connection":
            async with engine.begin() as connection:
                return await store_hubspot_events(connection, parsed)
        async with session_factory() as session, session.begin():
            return await store_hubspot_events(session, parsed)

    return store


async def rows(session_factory: async_sessionmaker[AsyncSession]) -> list[InboxEvent]:
    async with session_factory() as session:
        return list((await session.scalars(select(InboxEvent).order_by(InboxEvent.id))).all())


async def test_new_events_and_repeats_are_counted(
    store: Store, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    assert await store([event(1)]) == 1
    assert await store([event(1, attemptNumber=1)]) == 0
    # An executemany: a repeat of an earlier request and one inside the same body.
    assert await store([event(2), event(1), event(3), event(2, attemptNumber=2)]) == 2
    assert await store([]) == 0

    stored = await rows(session_factory)
    assert [row.payload for row in stored] == [event(1), event(2), event(3)]
    assert [row.object_key for row in stored] == ["hubspot:1", "hubspot:2", "hubspot:3"]
    assert {(row.source, row.kind, row.status, row.attempts) for row in stored} == {
        ("hubspot", "contact.propertyChange", "pending", 0)
    }
    assert all(row.next_attempt_at == row.received_at for row in stored)


async def test_nothing_is_stored_when_the_transaction_rolls_back(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    parsed = parse_body(json.dumps([event(1), event(2)]).encode())
    with pytest.raises(RuntimeError):
        async with engine.begin() as connection:
            assert await store_hubspot_events(connection, parsed) == 2
            raise RuntimeError("the commit never happens")
    assert await rows(session_factory) == []


async def test_salesforce_notifications_are_counted_by_notification_id(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    message = parse_outbound_message(SALESFORCE_OUTBOUND_MESSAGE.encode())
    async with engine.begin() as connection:
        assert await store_salesforce_message(connection, message) == 2
    async with session_factory() as session, session.begin():
        assert await store_salesforce_message(session, message) == 0

    stored = await rows(session_factory)
    assert [row.dedup_key for row in stored] == ["04l1I000000fztEQAQ", "04l1I000000fzt9QAA"]
    assert all("SessionId" not in json.dumps(row.payload) for row in stored)
