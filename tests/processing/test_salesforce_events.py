"""Salesforce notifications through the real processing step, several in one round.

A round works on its contacts in memory: contacts created by an earlier notification of the
round must be found by the later ones, by link and by email.
"""

import itertools
import time
from collections.abc import AsyncIterator

import pytest
from delivery.harness import Env, change, open_env
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.config import Settings
from syncgate.db import transaction
from syncgate.delivery.hubspot import HubSpotDeliverer
from syncgate.inbox.store import store_salesforce_message
from syncgate.platforms.salesforce.outbound_message import Notification, OutboundMessage
from syncgate.sync.decide.outcomes import Decision
from syncgate.sync.models import Contact, DecisionRecord, Segment, SegmentMember, SegmentType
from syncgate.sync.preferences import load_settings
from syncgate.sync.segments import create_segment

_ids = itertools.count(1)
FIRST, SECOND, THIRD = "00Q000000000001AAA", "00Q000000000002AAA", "00Q000000000003AAA"


def stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(seconds))


def lead(
    record_id: str, email: str, *, created: float, modified: float, **fields: str
) -> Notification:
    return Notification(
        id=f"04l1I{next(_ids):013d}",
        object_type="Lead",
        record_id=record_id,
        fields={
            "Id": record_id,
            "Email": email,
            "CreatedDate": stamp(created),
            "LastModifiedDate": stamp(modified),
            **fields,
        },
    )


async def send_notifications(env: Env, *notifications: Notification) -> None:
    message = OutboundMessage(
        organization_id="00D5g000004SyncEAA",
        action_id=None,
        session_id=None,
        enterprise_url=None,
        partner_url=None,
        notifications=list(notifications),
    )
    async with transaction(env.session_factory) as session:
        await store_salesforce_message(session, message)


@pytest.fixture
async def env(
    settings: Settings, session_factory: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Env]:
    async with open_env(settings, session_factory) as env:
        async with transaction(env.session_factory) as session:
            segment = await create_segment(
                session,
                "France",
                SegmentType.ACTIVE,
                {"property": "country", "operator": "eq", "value": "France"},
            )
            preferences = await load_settings(session)
            preferences.inclusion_segment_id = segment.id
            preferences.create_from_leads = True
        yield env


async def decisions_in_order(env: Env) -> list[tuple[str | None, str]]:
    """(the contact's email, decision) of every Salesforce → HubSpot decision, oldest first."""
    async with env.session_factory() as session:
        rows = await session.execute(
            select(Contact.email, DecisionRecord.decision)
            .join(Contact, Contact.id == DecisionRecord.contact_id)
            .where(DecisionRecord.direction == "salesforce_to_hubspot")
            .order_by(DecisionRecord.id)
        )
        return [(email, decision) for email, decision in rows]


async def test_a_round_of_notifications_finds_the_contacts_its_earlier_ones_created(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    # A HubSpot contact in the segment, not linked yet: found by its email.
    member_id = env.hubspot.add_contact(email="member@example.com", country="France")
    await env.send(change(member_id, "email", "member@example.com"))
    await env.send(change(member_id, "country", "France"))
    await env.process()
    now = time.time() - 600
    await send_notifications(
        env,
        # Membership is judged before a notification's values apply (rule 4): the country
        # makes the contact a member only once HubSpot has it.
        lead(
            FIRST, "new@example.com", created=now, modified=now, FirstName="Nia", Country="France"
        ),
        # The new Lead changed again: its contact is outside the segment (rule 5).
        lead(FIRST, "new@example.com", created=now, modified=now + 5, FirstName="Nina"),
        lead(SECOND, "MEMBER@example.com", created=now, modified=now + 9, FirstName="Mo"),
        # Another Lead with the first one's email: matched to the contact made for it, which
        # follows this more recently modified record from now on.
        lead(THIRD, "new@example.com", created=now, modified=now + 7, LastName="Twin"),
    )
    assert await env.process() == 4
    assert "processing its halves apart" not in caplog.text

    assert await decisions_in_order(env) == [
        ("new@example.com", Decision.CREATED_OUTSIDE_SEGMENT),
        ("new@example.com", Decision.SKIPPED_NOT_IN_SEGMENT),
        ("new@example.com", Decision.SKIPPED_NOT_IN_SEGMENT),
        ("member@example.com", Decision.FORWARDED),
    ]
    async with env.session_factory() as session:
        contacts = (await session.scalars(select(Contact).order_by(Contact.id))).all()
    assert [(c.hubspot_id, c.email, c.salesforce_id) for c in contacts] == [
        (member_id, "member@example.com", SECOND),
        (None, "new@example.com", THIRD),
    ]

    deliverer = HubSpotDeliverer(env.settings, env.session_factory, env.hubspot_client())
    while await deliverer.run_once():
        pass
    created = env.hubspot.find_by_email("new@example.com")
    assert created is not None and created["properties"]["firstname"] == "Nia"
    member = env.hubspot.get_contact(member_id)
    assert member is not None and member["properties"]["firstname"] == "Mo"
    async with env.session_factory() as session:
        segment = await session.scalar(select(Segment))
        members = await session.scalars(
            select(Contact.email)
            .join(SegmentMember, SegmentMember.contact_id == Contact.id)
            .order_by(Contact.email)
        )
        assert list(members) == ["member@example.com", "new@example.com"]
        assert segment is not None and segment.size == 2
