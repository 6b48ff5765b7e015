"""Delivery to Salesforce when things go wrong: retries, backoff, dead letters, leases, metrics."""

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from delivery.harness import Env, change, event, now_ms
from fakes.salesforce import FakeSalesforce
from prometheus_client import REGISTRY
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from syncgate.db import transaction
from syncgate.delivery.models import Delivery
from syncgate.delivery.salesforce import SalesforceDeliverer
from syncgate.models import utc_now
from syncgate.sync.mapping import Mapping
from syncgate.sync.models import SyncRule


async def linked_contact(env: Env, email: str) -> tuple[str, str]:
    """A contact created in Salesforce by a first delivery; returns (hubspot id, record id)."""
    hubspot_id = env.hubspot.add_contact(email=email, lastname="Linked")
    await env.sync(event("contact.creation", hubspot_id))
    contact = await env.contact(hubspot_id)
    assert contact.salesforce_id is not None
    return hubspot_id, contact.salesforce_id


async def queue_change(env: Env, hubspot_id: str, value: str) -> None:
    await env.send(change(hubspot_id, "firstname", value, occurredAt=now_ms() + 1000))
    await env.process()


def seconds_until(moment: datetime) -> float:
    return (moment - utc_now()).total_seconds()


def rate_limited(sf: FakeSalesforce) -> None:
    sf.fail_next(1, status=429, headers={"Retry-After": "30"}, path="/composite/")


def unavailable(sf: FakeSalesforce) -> None:
    sf.fail_next(1, status=503, path="/composite/")


def request_limit(sf: FakeSalesforce) -> None:
    sf.request_limit_exceeded(1)


def row_locked(sf: FakeSalesforce) -> None:
    sf.lock_rows(times=1)


@pytest.mark.parametrize(
    ("fault", "error", "min_wait", "max_wait"),
    [
        (rate_limited, "REQUEST_LIMIT_EXCEEDED", 29.0, 61.0),  # Retry-After honoured
        (unavailable, "SERVER_UNAVAILABLE", 0.4, 1.1),  # backoff: base 1 s, jitter down to 1/2
        (request_limit, "REQUEST_LIMIT_EXCEEDED", 0.4, 1.1),
        (row_locked, "UNABLE_TO_LOCK_ROW", 0.4, 1.1),
    ],
    ids=["429-retry-after", "503", "request-limit-exceeded", "unable-to-lock-row"],
)
async def test_a_transient_failure_is_retried_later_with_backoff(
    env: Env,
    fault: Callable[[FakeSalesforce], None],
    error: str,
    min_wait: float,
    max_wait: float,
) -> None:
    hubspot_id, record_id = await linked_contact(env, "transient@example.com")
    await queue_change(env, hubspot_id, "Tess")
    fault(env.salesforce)

    assert await env.deliver_once() == 1

    [_, delivery] = await env.deliveries()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert error in (delivery.last_error or "")
    assert delivery.lease_until is None
    assert min_wait <= seconds_until(delivery.next_attempt_at) <= max_wait
    assert await env.deliver() == 0  # not due yet
    assert (env.salesforce.get(record_id) or {})["FirstName"] is None

    await env.make_due()
    assert await env.deliver() == 1

    [_, delivery] = await env.deliveries()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("done", 2, None)
    assert [h["outcome"] for h in delivery.history] == ["retry", "done"]
    assert error in delivery.history[0]["error"]
    assert (env.salesforce.get(record_id) or {})["FirstName"] == "Tess"


async def test_a_failed_lookup_by_email_is_retried_for_the_whole_batch(env: Env) -> None:
    for name in ("l1", "l2"):
        env.hubspot.add_contact(email=f"{name}@example.com", lastname=name)
    await env.send(*(event("contact.creation", i) for i in env.hubspot.contacts))
    await env.process()
    env.salesforce.fail_next(1, status=503, path="/query")

    await env.deliver_once()

    assert [(d.status, d.attempts) for d in await env.deliveries()] == [("pending", 1)] * 2
    assert env.salesforce.write_calls == 0
    await env.make_due()
    await env.deliver()
    assert [d.status for d in await env.deliveries()] == ["done", "done"]
    assert len(env.salesforce.records) == 2


async def test_after_a_throttled_call_the_rest_of_the_round_is_not_sent(env: Env) -> None:
    hubspot_id, _ = await linked_contact(env, "upd@example.com")
    await queue_change(env, hubspot_id, "Ulla")
    env.hubspot.add_contact(email="new@example.com", lastname="New")
    await env.send(*(event("contact.creation", i) for i in env.hubspot.contacts))
    await env.process()
    env.salesforce.clear_log()
    env.salesforce.fail_next(1, status=429, headers={"Retry-After": "5"}, path="/composite/")

    await env.deliver_once()

    assert len(env.salesforce.requests_to("/composite/")) == 1
    pending = [d for d in await env.deliveries() if d.status == "pending"]
    assert len(pending) == 2
    assert all(seconds_until(d.next_attempt_at) >= 4 for d in pending)
    await env.make_due()
    await env.deliver()
    assert {d.status for d in await env.deliveries()} == {"done"}


async def test_an_unexpected_error_counts_as_a_failed_attempt(env: Env) -> None:
    env.configure(max_attempts=2)
    await env.set_mappings([Mapping("nickname", "Nick Name", "Nick Name", SyncRule.TWO_WAY)])
    env.hubspot.define_property("nickname")
    hubspot_id = env.hubspot.add_contact(email="odd@example.com", nickname="Oddie")
    await env.send(event("contact.creation", hubspot_id))
    await env.process()

    await env.deliver_once()
    [delivery] = await env.deliveries()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert "not a Salesforce API name" in (delivery.last_error or "")
    await env.make_due()
    await env.deliver_once()

    [delivery] = await env.deliveries()
    assert (delivery.status, delivery.attempts) == ("dead", 2)
    assert delivery.lease_until is None


async def test_a_timeout_is_retried_and_the_record_it_may_have_created_is_not_duplicated(
    env: Env,
) -> None:
    hubspot_id = env.hubspot.add_contact(email="slow@example.com", lastname="Slow")
    await env.send(event("contact.creation", hubspot_id))
    await env.process()
    env.salesforce.delay_next(0.5, path="/composite/")

    async with httpx.AsyncClient(timeout=0.2) as impatient:
        await env.deliver_once(env.salesforce_client(impatient))

    [delivery] = await env.deliveries()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert "timed out" in (delivery.last_error or "")
    # Salesforce finished the create after we gave up waiting.
    for _ in range(60):
        if env.salesforce.find_by_email("slow@example.com"):
            break
        await asyncio.sleep(0.05)
    await env.make_due()
    await env.deliver()

    [delivery] = await env.deliveries()
    assert delivery.status == "done"
    [lead] = env.salesforce.find_by_email("slow@example.com")
    assert (await env.contact(hubspot_id)).salesforce_id == lead["Id"]
    assert [w.operation for w in env.salesforce.writes] == ["create"]


async def test_a_validation_error_is_dead_at_once_and_batch_mates_are_delivered(
    env: Env,
) -> None:
    for name in ("ok1", "bad", "ok2"):
        env.hubspot.add_contact(email=f"{name}@example.com", lastname=name)
    env.salesforce.reject_records(
        lambda record: record.get("Email") == "bad@example.com",
        message="Phone is required for leads from HubSpot",
        fields=["Phone"],
    )
    await env.send(*(event("contact.creation", i) for i in env.hubspot.contacts))
    await env.process()

    await env.deliver()

    assert env.salesforce.records_per_write_call == [3]
    by_email = {d.values["email"]: d for d in await env.deliveries()}
    dead = by_email["bad@example.com"]
    assert (dead.status, dead.attempts) == ("dead", 1)
    assert dead.last_error == (
        "FIELD_CUSTOM_VALIDATION_EXCEPTION: Phone is required for leads from HubSpot"
    )
    assert [h["outcome"] for h in dead.history] == ["dead"]
    assert by_email["ok1@example.com"].status == by_email["ok2@example.com"].status == "done"
    assert env.salesforce.find_by_email("bad@example.com") == []
    assert len(env.salesforce.records) == 2
    await env.make_due()
    assert await env.deliver() == 0  # dead stays dead until an operator retries it


async def test_duplicates_detected_is_dead_with_salesforce_message(env: Env) -> None:
    env.salesforce.block_duplicate_emails = True
    hubspot_id, record_id = await linked_contact(env, "mine@example.com")
    other_id, other_record = await linked_contact(env, "other@example.com")
    env.salesforce.add_record("Lead", LastName="Taken", Company="X", Email="taken@example.com")
    at = now_ms() + 1000
    await env.send(
        change(hubspot_id, "email", "taken@example.com", occurredAt=at),
        change(other_id, "firstname", "Otto", occurredAt=at),
    )
    await env.process()

    await env.deliver()

    deliveries = await env.deliveries()
    dead = next(d for d in deliveries if d.values.get("email") == "taken@example.com")
    assert dead.status == "dead"
    assert dead.last_error == "DUPLICATES_DETECTED: Use one of these records?"
    assert (env.salesforce.get(record_id) or {})["Email"] == "mine@example.com"
    assert (env.salesforce.get(other_record) or {})["FirstName"] == "Otto"
    assert {d.status for d in deliveries if d is not dead} == {"done"}


async def test_after_max_attempts_of_transient_failures_the_delivery_is_dead(env: Env) -> None:
    env.configure(max_attempts=3)
    hubspot_id, record_id = await linked_contact(env, "doomed@example.com")
    await queue_change(env, hubspot_id, "Dee")
    env.salesforce.fail_next(10, status=503, path="/composite/")

    for _ in range(5):
        await env.deliver_once()
        await env.make_due()

    [_, delivery] = await env.deliveries()
    assert (delivery.status, delivery.attempts) == ("dead", 3)
    assert "SERVER_UNAVAILABLE" in (delivery.last_error or "")
    assert [(h["attempt"], h["outcome"]) for h in delivery.history] == [
        (1, "retry"),
        (2, "retry"),
        (3, "dead"),
    ]
    assert all("SERVER_UNAVAILABLE" in h["error"] for h in delivery.history)
    assert (env.salesforce.get(record_id) or {})["FirstName"] is None


async def _set_lease(env: Env, seconds: float) -> None:
    async with transaction(env.session_factory) as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.status == "pending")
            .values(
                status="in_flight",
                attempts=Delivery.attempts + 1,
                lease_until=utc_now() + timedelta(seconds=seconds),
            )
        )


async def test_a_delivery_whose_lease_expired_is_claimed_again(env: Env) -> None:
    hubspot_id = env.hubspot.add_contact(email="lease@example.com", lastname="Lease")
    await env.send(event("contact.creation", hubspot_id))
    await env.process()
    await _set_lease(env, -1)  # a worker claimed it and died

    assert await env.deliver() == 1

    [delivery] = await env.deliveries()
    assert (delivery.status, delivery.attempts) == ("done", 2)
    assert len(env.salesforce.find_by_email("lease@example.com")) == 1


async def test_a_delivery_with_a_valid_lease_is_left_alone(env: Env) -> None:
    hubspot_id = env.hubspot.add_contact(email="busy@example.com", lastname="Busy")
    await env.send(event("contact.creation", hubspot_id))
    await env.process()
    await _set_lease(env, 60)  # another worker is sending it right now

    assert await env.deliver() == 0

    [delivery] = await env.deliveries()
    assert (delivery.status, delivery.attempts) == ("in_flight", 1)
    assert env.salesforce.write_calls == 0


async def test_a_newer_change_waits_for_the_reclaimed_delivery_of_the_same_contact(
    env: Env,
) -> None:
    hubspot_id = env.hubspot.add_contact(email="twice@example.com", lastname="Twice")
    await env.send(event("contact.creation", hubspot_id))
    await env.process()
    await _set_lease(env, -1)  # the worker died with the creation in flight
    await queue_change(env, hubspot_id, "Tom")  # so this change starts a new delivery
    assert [d.status for d in await env.deliveries()] == ["in_flight", "pending"]

    await env.deliver()

    assert [d.status for d in await env.deliveries()] == ["done", "done"]
    [lead] = env.salesforce.find_by_email("twice@example.com")
    assert (lead["FirstName"], lead["LastName"]) == ("Tom", "Twice")


async def test_a_result_for_a_delivery_claimed_again_meanwhile_is_not_recorded(env: Env) -> None:
    hubspot_id, _ = await linked_contact(env, "fence@example.com")
    await queue_change(env, hubspot_id, "Fay")
    env.salesforce.clear_log()
    env.salesforce.delay_next(0.5, path="/composite/")
    slow = asyncio.create_task(env.deliver_once())
    for _ in range(100):  # until Salesforce holds the slow worker's write
        if env.salesforce.requests_to("/composite/"):
            break
        await asyncio.sleep(0.01)
    # Meanwhile the lease runs out and another worker claims and delivers it.
    async with transaction(env.session_factory) as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.status == "in_flight")
            .values(lease_until=utc_now() - timedelta(seconds=1))
        )
    await env.deliver()
    await slow

    [_, delivery] = await env.deliveries()
    assert (delivery.status, delivery.attempts) == ("done", 2)
    assert [h["attempt"] for h in delivery.history] == [2]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_delivery_outcomes_and_forward_latency_are_counted(env: Env) -> None:
    def counts() -> tuple[float, ...]:
        return (
            sample("syncgate_deliveries_total", target="salesforce", outcome="done"),
            sample("syncgate_deliveries_total", target="salesforce", outcome="retry"),
            sample("syncgate_deliveries_total", target="salesforce", outcome="dead"),
            sample("syncgate_forward_latency_seconds_count"),
        )

    before = counts()
    env.configure(max_attempts=2)
    for name in ("m1", "m2", "m3"):
        env.hubspot.add_contact(email=f"{name}@example.com", lastname=name)
    env.salesforce.reject_records(lambda r: r.get("Email") == "m3@example.com")
    env.salesforce.reject_records(
        lambda r: r.get("Email") == "m2@example.com", status_code="UNABLE_TO_LOCK_ROW", times=1
    )
    await env.send(*(event("contact.creation", i) for i in env.hubspot.contacts))
    await env.process()

    await env.deliver()
    await env.make_due()
    await env.deliver()

    after = counts()
    assert tuple(a - b for a, b in zip(after, before, strict=True)) == (2, 1, 1, 2)
    assert sample("syncgate_forward_latency_seconds_sum") > 0


async def test_a_change_queued_while_a_delivery_was_failing_is_not_overwritten_by_its_retry(
    env: Env,
) -> None:
    hubspot_id, record_id = await linked_contact(env, "order@example.com")
    await queue_change(env, hubspot_id, "Old")
    env.salesforce.clear_log()
    env.salesforce.delay_next(0.5, path="/composite/")
    env.salesforce.fail_next(1, status=503, path="/composite/")
    failing = asyncio.create_task(env.deliver_once())
    for _ in range(100):  # until Salesforce holds the failing write
        if env.salesforce.requests_to("/composite/"):
            break
        await asyncio.sleep(0.01)
    await env.send(change(hubspot_id, "firstname", "New", occurredAt=now_ms() + 5000))
    await env.process()  # queued while the first delivery is in flight
    await failing

    await env.deliver()  # whatever is due now
    await env.make_due()
    await env.deliver()

    assert (env.salesforce.get(record_id) or {})["FirstName"] == "New"
    pending_or_done = [d for d in await env.deliveries() if d.values.get("firstname")]
    assert [(d.status, d.values["firstname"]) for d in pending_or_done] == [("done", "New")]


class DeadlockDetected(Exception):
    sqlstate = "40P01"


async def test_a_settle_that_loses_a_deadlock_is_settled_again(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    hubspot_id = env.hubspot.add_contact(email="deadlock@example.com", lastname="Lock")
    await env.send(event("contact.creation", hubspot_id))
    await env.process()
    settle = SalesforceDeliverer._settle
    calls = 0

    async def loses_once(self: SalesforceDeliverer, *args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OperationalError("SELECT … FOR UPDATE", {}, DeadlockDetected())
        await settle(self, *args)

    monkeypatch.setattr(SalesforceDeliverer, "_settle", loses_once)

    assert await env.deliver_once() == 1

    [delivery] = await env.deliveries()
    assert (delivery.status, delivery.attempts, calls) == ("done", 1, 2)
    assert len(env.salesforce.find_by_email("deadlock@example.com")) == 1
