"""HubSpot events through the real processing step: decisions, deletions, merges, reads.

In process, on the real database, with the real HubSpot and Salesforce clients talking to the
fake platforms (tests/delivery/harness.py).
"""

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from delivery.harness import (
    APP_ID,
    OTHER_PORTAL_ID,
    PORTAL_ID,
    Env,
    change,
    event,
    now_ms,
)
from sqlalchemy import select

from syncgate.db import transaction
from syncgate.models import utc_now
from syncgate.processing.apply import Round
from syncgate.processing.claim import RoundContext, RoundEvent
from syncgate.processing.round import InboxRounds
from syncgate.sync.decide.outcomes import Decision, Direction
from syncgate.sync.models import Segment, SegmentMember, SegmentType
from syncgate.sync.preferences import load_settings
from syncgate.sync.segments import create_segment


async def synced_contact(env: Env, **properties: Any) -> tuple[str, str]:
    """A HubSpot contact created, processed and delivered; returns (hubspot id, Salesforce id)."""
    hubspot_id = env.hubspot.add_contact(properties)
    await env.sync(event("contact.creation", hubspot_id))
    contact = await env.contact(hubspot_id)
    assert contact.salesforce_id is not None
    return hubspot_id, contact.salesforce_id


def decisions_of(records: list[Any]) -> list[str]:
    return [record.decision for record in records]


async def test_every_event_records_exactly_one_decision_with_its_reason(env: Env) -> None:
    hubspot_id = env.hubspot.add_contact(email="ann@example.com", firstname="Ann")
    events = [
        event("contact.creation", hubspot_id),
        change(hubspot_id, "firstname", "Annie"),
        change(hubspot_id, "favourite_colour", "teal"),
        change(hubspot_id, "firstname", "Annie"),
        event("contact.associationChange", hubspot_id),
    ]
    await env.sync(*events)

    records = await env.decisions()
    # One per event and direction: the inbox event each was made for is named exactly once.
    assert len(records) == len(events)
    assert len({r.source_event for r in records}) == len(events)
    assert {r.direction for r in records} == {Direction.HUBSPOT_TO_SALESFORCE}
    assert all(r.detail["reason"] for r in records)
    by_event = {r.source_event: r for r in records}
    inbox = await env.inbox()
    assert [by_event[f"hubspot:{e.id}"].decision for e in inbox] == [
        Decision.FORWARDED,
        Decision.FORWARDED,
        Decision.SKIPPED_UNMAPPED,
        Decision.SKIPPED_NO_CHANGE,
        Decision.IGNORED,
    ]
    assert all(e.status == "done" for e in inbox)


@pytest.mark.parametrize("kind", ["contact.deletion", "contact.privacyDeletion"])
async def test_a_deletion_is_ignored_and_keeps_the_salesforce_record_and_the_link(
    env: Env, client: httpx.AsyncClient, kind: str
) -> None:
    hubspot_id, salesforce_id = await synced_contact(
        env, email="gone@example.com", firstname="Gone", lastname="Soon"
    )
    before = env.salesforce.get(salesforce_id)
    writes = env.salesforce.write_calls

    await env.sync(event(kind, hubspot_id))

    last = (await env.decisions(hubspot_id))[-1]
    assert last.decision == Decision.IGNORED
    assert "never deleted" in last.detail["reason"]
    assert ("privacy" in last.detail["reason"]) == (kind == "contact.privacyDeletion")
    assert env.salesforce.get(salesforce_id) == before
    assert env.salesforce.write_calls == writes
    contact = await env.contact(hubspot_id)
    assert contact.salesforce_id == salesforce_id
    assert contact.hubspot_deleted_at is not None
    answer = await client.get(f"/api/contacts/{contact.id}")
    assert answer.status_code == 200
    assert answer.json()["salesforce_id"] == salesforce_id
    assert answer.json()["email"] == "gone@example.com"


async def test_a_change_to_a_deleted_contact_is_ignored(env: Env) -> None:
    hubspot_id, salesforce_id = await synced_contact(env, email="del@example.com", lastname="Del")
    await env.sync(event("contact.deletion", hubspot_id))
    writes = env.salesforce.write_calls

    await env.sync(change(hubspot_id, "firstname", "Ghost"))

    last = (await env.decisions(hubspot_id))[-1]
    assert last.decision == Decision.IGNORED
    assert "deleted" in last.detail["reason"]
    assert env.salesforce.write_calls == writes
    assert (env.salesforce.get(salesforce_id) or {})["FirstName"] is None
    assert [d.status for d in await env.deliveries()] == ["done"]


async def test_a_restored_contact_syncs_again(env: Env) -> None:
    hubspot_id, salesforce_id = await synced_contact(env, email="back@example.com", lastname="B")
    await env.sync(event("contact.deletion", hubspot_id))
    await env.sync(event("contact.restore", hubspot_id))
    assert (await env.contact(hubspot_id)).hubspot_deleted_at is None

    await env.sync(change(hubspot_id, "firstname", "Returned"))

    assert decisions_of(await env.decisions(hubspot_id)) == [
        Decision.FORWARDED,
        Decision.IGNORED,  # deletion
        Decision.IGNORED,  # restore itself sends nothing
        Decision.FORWARDED,
    ]
    assert (env.salesforce.get(salesforce_id) or {})["FirstName"] == "Returned"
    assert len(env.salesforce.records) == 1


async def test_a_restore_processed_before_its_earlier_deletion_still_wins(env: Env) -> None:
    hubspot_id, salesforce_id = await synced_contact(env, email="ooo@example.com", lastname="O")
    deleted_at = now_ms() + 1000
    # Separate webhook calls: the restore is processed first, the older deletion after it.
    await env.sync(event("contact.restore", hubspot_id, occurredAt=deleted_at + 500))
    await env.sync(event("contact.deletion", hubspot_id, occurredAt=deleted_at))

    assert (await env.contact(hubspot_id)).hubspot_deleted_at is None
    assert "restored since" in (await env.decisions(hubspot_id))[-1].detail["reason"]
    await env.sync(change(hubspot_id, "firstname", "Olive", occurredAt=deleted_at + 900))
    assert (env.salesforce.get(salesforce_id) or {})["FirstName"] == "Olive"


async def test_a_restore_older_than_the_deletion_does_not_undo_it(env: Env) -> None:
    hubspot_id, _ = await synced_contact(env, email="old.restore@example.com", lastname="R")
    deleted_at = now_ms() + 1000
    await env.sync(event("contact.deletion", hubspot_id, occurredAt=deleted_at))
    await env.sync(event("contact.restore", hubspot_id, occurredAt=deleted_at - 500))

    assert (await env.contact(hubspot_id)).hubspot_deleted_at is not None


async def test_a_merge_hands_the_salesforce_link_to_the_surviving_contact(env: Env) -> None:
    loser_id, salesforce_id = await synced_contact(env, email="pat@example.com", lastname="Pat")
    winner_id = env.hubspot.add_contact(lastname="Pat")
    # The winner is known to the mirror but was never linked (it has no email yet).
    await env.sync(change(winner_id, "lastname", "Pat"))
    assert (await env.contact(winner_id)).salesforce_id is None

    await env.sync(
        event(
            "contact.merge",
            winner_id,
            primaryObjectId=int(winner_id),
            mergedObjectIds=[int(loser_id)],
            newObjectId=int(winner_id),
            numberOfPropertiesMoved=3,
        )
    )

    winner, loser = await env.contact(winner_id), await env.contact(loser_id)
    assert winner.salesforce_id == salesforce_id
    assert loser.salesforce_id is None
    assert loser.merged_into_id == winner.id
    merge_decision = (await env.decisions(winner_id))[-1]
    assert merge_decision.decision == Decision.IGNORED
    assert winner_id in merge_decision.detail["reason"]

    await env.sync(change(winner_id, "firstname", "Patricia"))

    assert (await env.decisions(winner_id))[-1].decision == Decision.FORWARDED
    assert (env.salesforce.get(salesforce_id) or {})["FirstName"] == "Patricia"
    assert len(env.salesforce.records) == 1


async def test_a_merge_keeps_the_survivors_own_link(env: Env) -> None:
    winner_id, winner_sf = await synced_contact(env, email="w@example.com", lastname="Winner")
    loser_id, loser_sf = await synced_contact(env, email="l@example.com", lastname="Loser")

    await env.sync(
        event(
            "contact.merge",
            winner_id,
            primaryObjectId=int(winner_id),
            mergedObjectIds=[int(loser_id)],
            newObjectId=int(winner_id),
        )
    )
    await env.sync(change(winner_id, "firstname", "Wendy"))

    assert (await env.contact(winner_id)).salesforce_id == winner_sf
    assert (env.salesforce.get(winner_sf) or {})["FirstName"] == "Wendy"
    assert (env.salesforce.get(loser_sf) or {})["FirstName"] is None
    assert len(env.salesforce.records) == 2


async def test_a_merge_into_a_new_record_moves_the_link_to_it(env: Env) -> None:
    first_id, salesforce_id = await synced_contact(env, email="m1@example.com", lastname="One")
    second_id = env.hubspot.add_contact(email="m2@example.com", lastname="Two")
    new_id = int(second_id) + 1000

    await env.sync(
        event(
            "contact.merge",
            new_id,
            primaryObjectId=int(first_id),
            mergedObjectIds=[int(second_id)],
            newObjectId=new_id,
        )
    )
    await env.sync(change(new_id, "firstname", "Merged"))

    assert (await env.contact(new_id)).salesforce_id == salesforce_id
    assert (await env.contact(first_id)).salesforce_id is None
    assert (env.salesforce.get(salesforce_id) or {})["FirstName"] == "Merged"
    assert len(env.salesforce.records) == 1


async def test_a_pending_change_of_a_merged_contact_is_not_lost_or_duplicated(env: Env) -> None:
    loser_id, salesforce_id = await synced_contact(env, email="q@example.com", lastname="Q")
    winner_id = env.hubspot.add_contact(email="q2@example.com", lastname="Q")
    # Edited in Salesforce: a lookup by the loser's email would no longer find the record.
    env.salesforce.update_record(salesforce_id, Email="q.sales@example.com")
    # A change to the loser is queued but not delivered before the merge is processed.
    await env.send(change(loser_id, "firstname", "Quinn"))
    await env.process()
    await env.sync(
        event(
            "contact.merge",
            winner_id,
            primaryObjectId=int(winner_id),
            mergedObjectIds=[int(loser_id)],
            newObjectId=int(winner_id),
        )
    )

    deliveries = await env.deliveries()
    assert [d.status for d in deliveries] == ["done", "done"]
    assert deliveries[1].contact_id == (await env.contact(winner_id)).id
    assert (env.salesforce.get(salesforce_id) or {})["FirstName"] == "Quinn"
    assert len(env.salesforce.records) == 1


async def test_events_from_another_portal_are_ignored(env: Env) -> None:
    env.configure(hubspot_portal_id=PORTAL_ID)
    await env.sync(
        change(101, "email", "stranger@example.com", portalId=OTHER_PORTAL_ID),
        change(102, "email", "ours@example.com"),
    )

    decisions = await env.decisions()
    assert Counter(d.decision for d in decisions) == {
        Decision.IGNORED: 1,
        Decision.FORWARDED: 1,
    }
    ignored = next(d for d in decisions if d.decision == Decision.IGNORED)
    assert ignored.contact_id is None
    assert str(OTHER_PORTAL_ID) in ignored.detail["reason"]
    assert env.salesforce.find_by_email("stranger@example.com") == []
    assert len(env.salesforce.find_by_email("ours@example.com")) == 1


@pytest.mark.parametrize(
    "kind", ["contact.associationChange", "deal.creation", "company.propertyChange"]
)
async def test_unsupported_subscription_types_are_ignored(env: Env, kind: str) -> None:
    await env.sync(event(kind, 4242, propertyName="email", propertyValue="x@example.com"))

    [decision] = await env.decisions()
    assert decision.decision == Decision.IGNORED
    assert kind in decision.detail["reason"]
    assert await env.deliveries() == []
    assert [e.status for e in await env.inbox()] == ["done"]


async def test_the_echo_of_our_own_write_is_skipped_no_change(env: Env) -> None:
    hubspot_id, _ = await synced_contact(env, email="echo@example.com", firstname="Eve")
    writes = env.salesforce.write_calls

    await env.sync(
        change(hubspot_id, "firstname", "Eve", changeSource="INTEGRATION", sourceId=str(APP_ID))
    )

    last = (await env.decisions(hubspot_id))[-1]
    assert last.decision == Decision.SKIPPED_NO_CHANGE
    assert env.salesforce.write_calls == writes


async def test_a_value_salesforce_already_has_is_skipped_no_change(env: Env) -> None:
    hubspot_id, salesforce_id = await synced_contact(env, email="same@example.com", lastname="S")
    env.salesforce.update_record(salesforce_id, FirstName="Sam")
    # What a Salesforce notification would have told the mirror.
    async with env.session_factory() as session, session.begin():
        contact = await session.merge(await env.contact(hubspot_id))
        contact.salesforce_values = {**contact.salesforce_values, "FirstName": "Sam"}
    writes = env.salesforce.write_calls

    await env.sync(change(hubspot_id, "firstname", "Sam"))

    last = (await env.decisions(hubspot_id))[-1]
    assert last.decision == Decision.SKIPPED_NO_CHANGE
    assert env.salesforce.write_calls == writes


async def test_an_older_change_with_another_value_is_skipped_stale(env: Env) -> None:
    hubspot_id, salesforce_id = await synced_contact(env, email="old@example.com", lastname="O")
    at = (await env.contact(hubspot_id)).properties[0].changed_at_ms
    await env.sync(change(hubspot_id, "firstname", "Newer", occurredAt=at + 10_000))

    await env.sync(change(hubspot_id, "firstname", "Older", occurredAt=at + 5_000))

    last = (await env.decisions(hubspot_id))[-1]
    assert last.decision == Decision.SKIPPED_STALE
    assert (env.salesforce.get(salesforce_id) or {})["FirstName"] == "Newer"
    props = (await env.contact(hubspot_id)).property_values()
    assert props["firstname"] == "Newer"


async def test_a_change_to_an_unmapped_property_is_skipped_unmapped(env: Env) -> None:
    hubspot_id, _ = await synced_contact(env, email="unmapped@example.com", lastname="U")
    writes = env.salesforce.write_calls

    await env.sync(change(hubspot_id, "favourite_colour", "teal"))

    last = (await env.decisions(hubspot_id))[-1]
    assert last.decision == Decision.SKIPPED_UNMAPPED
    assert "favourite_colour" in last.detail["reason"]
    assert env.salesforce.write_calls == writes
    # The store keeps every property webhooks bring, mapped or not.
    assert (await env.contact(hubspot_id)).property_values()["favourite_colour"] == "teal"


async def test_a_creation_whose_contact_hubspot_no_longer_has_is_ignored(env: Env) -> None:
    await env.sync(event("contact.creation", 987654321))

    [decision] = await env.decisions()
    assert decision.decision == Decision.IGNORED
    assert "no longer exists" in decision.detail["reason"]
    assert await env.deliveries() == []
    assert [e.status for e in await env.inbox()] == ["done"]


async def test_a_creation_read_that_fails_transiently_is_retried_later(env: Env) -> None:
    hubspot_id = env.hubspot.add_contact(email="later@example.com", lastname="Later")
    env.hubspot.fail_next(1, status=503, path="/contacts/batch/read")
    await env.send(event("contact.creation", hubspot_id))

    await env.process()

    [pending] = await env.inbox()
    assert pending.status == "pending"
    assert pending.attempts == 1
    assert "HubSpot" in (pending.last_error or "")
    assert await env.decisions() == []
    assert await env.process() == 0  # not due yet: backoff, not a busy loop

    await env.make_due()
    await env.sync()

    [done] = await env.inbox()
    assert done.status == "done"
    assert decisions_of(await env.decisions(hubspot_id)) == [Decision.FORWARDED]
    [lead] = env.salesforce.find_by_email("later@example.com")
    assert lead["LastName"] == "Later"


async def test_a_round_processes_its_events_together_with_the_same_outcome(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """Many contacts, repeated changes of one contact, joining and leaving a segment: the
    round's shared reads and batched writes give what event-by-event processing gives."""
    async with transaction(env.session_factory) as session:
        segment = await create_segment(
            session,
            "France",
            SegmentType.ACTIVE,
            {"property": "country", "operator": "eq", "value": "France"},
        )
        (await load_settings(session)).inclusion_segment_id = segment.id
    events = [change(100 + n, "email", f"person{n}@example.com") for n in range(30)]
    events += [
        change(100, "country", "France"),  # joins: every mapped property goes
        change(100, "firstname", "Ann"),
        change(100, "firstname", "Annie"),  # coalesced into the same delivery
        change(101, "country", "France"),
        change(101, "country", "Spain"),  # joins and leaves within the round
    ]
    await env.send(*events)
    assert await env.process() == len(events)

    assert "processing its halves apart" not in caplog.text
    inbox = await env.inbox()
    assert all(e.status == "done" for e in inbox)
    assert len(await env.decisions()) == len(events)
    async with env.session_factory() as session:
        members = (await session.scalars(select(SegmentMember.contact_id))).all()
        refreshed = await session.get(Segment, segment.id)
        assert refreshed is not None and refreshed.size == 1
    assert members == [(await env.contact(100)).id]
    queued = {d.contact_id: d.values for d in await env.deliveries()}
    assert queued == {
        (await env.contact(100)).id: {
            "email": "person0@example.com",
            "country": "France",
            "firstname": "Annie",
        },
        # It was a member for a moment: what it had then goes, the change that took it out not.
        (await env.contact(101)).id: {"email": "person1@example.com", "country": "France"},
    }
    await env.deliver()
    assert [r["FirstName"] for r in env.salesforce.find_by_email("person0@example.com")] == [
        "Annie"
    ]


@pytest.mark.round_split
async def test_an_event_that_fails_in_a_round_fails_alone(
    env: Env, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Round.apply

    def failing_for_contact_7(self: Round, event: RoundEvent) -> None:
        if event.object_key == "hubspot:7":
            raise RuntimeError("contact 7 cannot be processed")
        real(self, event)

    monkeypatch.setattr(Round, "apply", failing_for_contact_7)
    await env.sync(*(change(n, "email", f"person{n}@example.com") for n in range(5, 10)))

    assert "processing its halves apart" in caplog.text
    by_contact = {e.object_key: e for e in await env.inbox()}
    failed = by_contact.pop("hubspot:7")
    assert failed.status == "pending"
    assert failed.last_error == "RuntimeError: contact 7 cannot be processed"
    assert all(e.status == "done" for e in by_contact.values())
    assert sorted(r["Email"] for r in env.salesforce.records.values()) == [
        f"person{n}@example.com" for n in (5, 6, 8, 9)
    ]
    # Nothing of the failed event was kept: no contact, no decision.
    assert [d.source_event for d in await env.decisions()] == [
        f"hubspot:{e.id}" for e in by_contact.values()
    ]


async def test_a_change_to_a_contact_never_seen_reads_it_from_hubspot(env: Env) -> None:
    """No backfill was run: the first change of a contact brings what HubSpot has, so the
    contact syncs although the change itself carries no email."""
    known = [
        env.hubspot.add_contact(email=f"old{n}@example.com", firstname=f"Old{n}", lastname="Seen")
        for n in range(3)
    ]

    await env.sync(*(change(hubspot_id, "jobtitle", "Founder") for hubspot_id in known))

    reads = [r for r in env.hubspot.requests if r.path.endswith("/batch/read")]
    assert len(reads) == 1  # one call for the whole round
    for n, hubspot_id in enumerate(known):
        [decision] = await env.decisions(hubspot_id)
        assert decision.decision == Decision.FORWARDED
        [lead] = env.salesforce.find_by_email(f"old{n}@example.com")
        assert (lead["FirstName"], lead["LastName"], lead["Title"]) == (
            f"Old{n}",
            "Seen",
            "Founder",
        )
    # Read once: later changes of these contacts need no read.
    await env.sync(change(known[0], "jobtitle", "Chair"))
    assert len([r for r in env.hubspot.requests if r.path.endswith("/batch/read")]) == 1


async def test_a_first_sight_read_that_fails_is_retried_later(env: Env) -> None:
    hubspot_id = env.hubspot.add_contact(email="unread@example.com", lastname="Unread")
    env.hubspot.fail_next(1, status=503, path="/contacts/batch/read")

    await env.sync(change(hubspot_id, "jobtitle", "Owner"))

    [pending] = await env.inbox()
    assert (pending.status, pending.last_error) == (
        "pending",
        "reading the contact from HubSpot failed",
    )
    assert await env.decisions() == []
    await env.make_due()
    await env.sync()
    [decision] = await env.decisions(hubspot_id)
    assert decision.decision == Decision.FORWARDED
    [lead] = env.salesforce.find_by_email("unread@example.com")
    assert (lead["LastName"], lead["Title"]) == ("Unread", "Owner")


async def rounds_of_two(env: Env) -> InboxRounds:
    rounds = InboxRounds(env.settings, env.session_factory, env.hubspot_client())
    rounds.batch_size, rounds.claim_ahead = 2, True  # SQLite's are not claimed ahead
    return rounds


async def test_rounds_claimed_ahead_process_every_event_once_and_in_order(env: Env) -> None:
    """A full round has the next one claimed and read while it is processed: still each event
    once, and one contact's changes in the order they happened, across rounds."""
    ids = [env.hubspot.add_contact(email=f"ahead{n}@example.com") for n in range(3)]
    start = now_ms()
    events = [change(ids[k % 3], "firstname", f"Name{k}", occurredAt=start + k) for k in range(7)]
    await env.send(*events)

    rounds = await rounds_of_two(env)
    claimed = [await rounds.run_once() for _ in range(5)]

    assert claimed == [2, 2, 2, 1, 0]
    inbox = await env.inbox()
    assert [(e.status, e.attempts) for e in inbox] == [("done", 1)] * 7
    assert len(await env.decisions()) == 7
    await env.deliver()
    assert [
        env.salesforce.find_by_email(f"ahead{n}@example.com")[0]["FirstName"] for n in range(3)
    ] == [
        "Name6",
        "Name4",
        "Name5",
    ]


async def test_a_round_claimed_ahead_when_the_worker_stops_is_processed_after_its_lease(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [env.hubspot.add_contact(email=f"stop{n}@example.com") for n in range(4)]
    await env.send(*(change(hubspot_id, "jobtitle", "Owner") for hubspot_id in ids))

    rounds = await rounds_of_two(env)
    claims = rounds._claim
    claimed: list[int] = []
    claimed_ahead = asyncio.Event()

    async def claim() -> tuple[list[RoundEvent], RoundContext]:
        events, context = await claims()
        claimed.append(len(events))
        if len(claimed) == 2:
            claimed_ahead.set()
        return events, context

    monkeypatch.setattr(rounds, "_claim", claim)
    assert await rounds.run_once() == 2
    async with asyncio.timeout(10):
        await claimed_ahead.wait()
    await rounds.close()

    inbox = await env.inbox()
    assert [(e.status, e.attempts) for e in inbox] == [("done", 1)] * 2 + [("pending", 1)] * 2
    assert all(e.next_attempt_at > utc_now() for e in inbox[2:])  # leased: waiting, not lost
    await env.make_due()
    assert await env.process() == 2
    assert [(e.status, e.attempts) for e in await env.inbox()][2:] == [("done", 2)] * 2
    await env.deliver()
    titles = [env.salesforce.find_by_email(f"stop{n}@example.com")[0]["Title"] for n in range(4)]
    assert titles == ["Owner"] * 4
