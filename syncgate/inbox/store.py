"""Storing webhook events in the inbox: one short transaction, duplicates ignored.

The intake is the hottest path of the service (every webhook request), so it runs Core
statements on a plain connection: no ORM session, no RETURNING. The insert is built once per
dialect and its compiled form comes from the engine's cache; the driver's row count says how
many rows were new (an `executemany` counts every row it inserted, on psycopg and sqlite3 alike).
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from syncgate.db import insert_ignoring_conflicts_statement
from syncgate.inbox.models import InboxEvent, InboxStatus, Source
from syncgate.models import utc_now
from syncgate.platforms.hubspot.events import HubSpotEvent, dedup_key
from syncgate.platforms.salesforce.outbound_message import OutboundMessage

_PENDING = InboxStatus.PENDING.value
_INSERTS: dict[str, Insert] = {}


def _inbox_insert(dialect: Dialect) -> Insert:
    """`INSERT INTO inbox_events … ON CONFLICT DO NOTHING` for `dialect`, built once."""
    statement = _INSERTS.get(dialect.name)
    if statement is None:
        statement = _INSERTS[dialect.name] = insert_ignoring_conflicts_statement(
            dialect, InboxEvent.__table__
        )
    return statement


async def _insert(db: AsyncConnection | AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Insert rows, skipping those already stored; returns how many were new."""
    if not rows:
        return 0
    # A session (tests, scripts) lends its connection and transaction to the same Core insert.
    connection = await db.connection() if isinstance(db, AsyncSession) else db
    result = await connection.execute(_inbox_insert(connection.dialect), rows)
    return result.rowcount


async def store_hubspot_events(
    db: AsyncConnection | AsyncSession, events: Sequence[tuple[HubSpotEvent, dict[str, Any]]]
) -> int:
    """Store HubSpot events; returns the number that were new."""
    now = utc_now()
    rows = [
        {
            "source": Source.HUBSPOT.value,
            "dedup_key": dedup_key(raw),
            "kind": event.subscription_type,
            "object_key": f"hubspot:{event.object_id}",
            "occurred_at_ms": event.occurred_at,
            "received_at": now,
            "next_attempt_at": now,
            "payload": raw,
            "status": _PENDING,
            "attempts": 0,
        }
        for event, raw in events
    ]
    return await _insert(db, rows)


def salesforce_time_ms(value: str | None) -> int | None:
    """Milliseconds since the epoch of a Salesforce dateTime (`2017-12-11T21:49:24.000Z`)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


async def store_salesforce_message(
    db: AsyncConnection | AsyncSession, message: OutboundMessage
) -> int:
    """Store each notification of an Outbound Message; returns the number that were new."""
    now = utc_now()
    received_ms = int(now.timestamp() * 1000)
    rows = []
    for notification in message.notifications:
        occurred = salesforce_time_ms(notification.fields.get("LastModifiedDate"))
        rows.append(
            {
                "source": Source.SALESFORCE.value,
                "dedup_key": notification.id,
                "kind": notification.object_type,
                "object_key": f"salesforce:{notification.record_id}",
                "occurred_at_ms": occurred if occurred is not None else received_ms,
                "received_at": now,
                "next_attempt_at": now,
                # The SessionId is a credential and is never stored.
                "payload": {
                    "notification_id": notification.id,
                    "object_type": notification.object_type,
                    "record_id": notification.record_id,
                    "fields": notification.fields,
                    "action_id": message.action_id,
                },
                "status": _PENDING,
                "attempts": 0,
            }
        )
    return await _insert(db, rows)
