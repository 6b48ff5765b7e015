"""A target that is down is paused, not hammered: the per-platform circuit breaker, shared
through the database, and the retry window that ends a delivery by time, not by count."""

from datetime import timedelta

from delivery.harness import Env, change, event, now_ms
from sqlalchemy import update

from syncgate.connections.models import Breaker, PlatformStatus
from syncgate.db import transaction
from syncgate.delivery.hubspot import HubSpotDeliverer
from syncgate.delivery.models import Delivery
from syncgate.models import utc_now


async def status(env: Env, platform: str = "salesforce") -> PlatformStatus:
    async with env.session_factory() as session:
        row = await session.get(PlatformStatus, platform)
        assert row is not None, f"no status for {platform}"
        return row


async def make_probe_due(env: Env) -> None:
    async with transaction(env.session_factory) as session:
        await session.execute(
            update(PlatformStatus).values(next_probe_at=utc_now() - timedelta(seconds=1))
        )


async def queue_creations(env: Env, count: int, tag: str = "c") -> None:
    for n in range(count):
        env.hubspot.add_contact(email=f"{tag}{n}@example.com", lastname=f"L{n}")
    await env.send(*(event("contact.creation", i) for i in env.hubspot.contacts))
    await env.process()


def attempts(deliveries: list[Delivery]) -> list[int]:
    return [d.attempts for d in deliveries]


async def open_breaker(env: Env, failures: int) -> None:
    """Fail `failures` batches in a row with Salesforce down."""
    env.salesforce.go_down(503)
    for _ in range(failures):
        assert await env.deliver_once() > 0
        await env.make_due()


async def test_consecutive_whole_call_failures_open_the_breaker_and_nothing_is_sent_while_open(
    env: Env,
) -> None:
    env.configure(breaker_failures=3, breaker_probe_seconds=60)
    await queue_creations(env, 2)

    await open_breaker(env, 3)

    row = await status(env)
    assert (row.breaker, row.consecutive_failures) == (Breaker.OPEN, 3)
    assert row.opened_at is not None and row.next_probe_at is not None
    assert 59 <= (row.next_probe_at - utc_now()).total_seconds() <= 60
    assert "503" in (row.last_error or "") or "unavailable" in (row.last_error or "").lower()
    sent = len(env.salesforce.requests)
    for _ in range(5):  # due deliveries, an open breaker: no call, no attempt spent
        assert await env.deliver_once() == 0
    assert len(env.salesforce.requests) == sent
    assert attempts(await env.deliveries()) == [3, 3]
    assert {d.status for d in await env.deliveries()} == {"pending"}


async def test_one_probe_call_half_opens_it_and_the_next_batch_closes_it(env: Env) -> None:
    env.configure(breaker_failures=2, breaker_probe_seconds=60)
    await queue_creations(env, 3)
    await open_breaker(env, 2)
    env.salesforce.come_back()
    env.salesforce.clear_log()

    await make_probe_due(env)
    assert await env.deliver_once() == 0  # this round is the probe

    assert [r.path.rsplit("/", 1)[-1] for r in env.salesforce.requests] == ["token", "limits"]
    assert (await status(env)).breaker == Breaker.HALF_OPEN
    assert await env.deliver() == 3
    row = await status(env)
    assert (row.breaker, row.opened_at, row.next_probe_at) == (Breaker.CLOSED, None, None)
    assert row.last_success_at is not None
    assert [(d.status, d.attempts) for d in await env.deliveries()] == [("done", 3)] * 3
    assert len(env.salesforce.records) == 3


async def test_failed_probes_come_at_growing_intervals_up_to_the_cap(env: Env) -> None:
    env.configure(breaker_failures=1, breaker_probe_seconds=10, breaker_probe_max_seconds=35)
    await queue_creations(env, 1)
    await open_breaker(env, 1)
    intervals = []
    for _ in range(4):
        await make_probe_due(env)
        assert await env.deliver_once() == 0
        row = await status(env)
        assert row.breaker == Breaker.OPEN
        intervals.append(row.probe_interval)
    assert intervals == [20, 35, 35, 35]
    assert attempts(await env.deliveries()) == [1]  # probes spend no delivery attempt


async def test_a_failure_right_after_a_passed_probe_reopens_it_at_once(env: Env) -> None:
    env.configure(breaker_failures=3, breaker_probe_seconds=10)
    await queue_creations(env, 1)
    await open_breaker(env, 3)
    env.salesforce.come_back()
    await make_probe_due(env)
    await env.deliver_once()  # the probe passes
    env.salesforce.fail_next(1, status=503, path="/query")

    assert await env.deliver_once() == 1

    row = await status(env)
    assert (row.breaker, row.probe_interval) == (Breaker.OPEN, 20)


async def test_a_failed_lookup_before_the_writes_counts_once_not_per_delivery(env: Env) -> None:
    await queue_creations(env, 5)
    env.salesforce.fail_next(1, status=503, path="/query")

    assert await env.deliver_once() == 5

    assert (await status(env)).consecutive_failures == 1
    assert env.salesforce.write_calls == 0


async def test_an_answer_resets_the_count_of_failures_in_a_row(env: Env) -> None:
    env.configure(breaker_failures=3)
    await queue_creations(env, 1, tag="a")
    env.salesforce.fail_next(2, status=500, path="/query")
    await env.deliver_once()
    await env.make_due()
    await env.deliver_once()
    assert (await status(env)).consecutive_failures == 2
    await env.make_due()

    await env.deliver_once()

    row = await status(env)
    assert (row.breaker, row.consecutive_failures) == (Breaker.CLOSED, 0)


async def test_a_record_error_does_not_count_as_the_platform_being_down(
    env: Env,
) -> None:
    env.configure(breaker_failures=1)
    env.hubspot.add_contact(email="locked@example.com", lastname="Locked")
    await env.sync(event("contact.creation", next(iter(env.hubspot.contacts))))
    hubspot_id = next(iter(env.hubspot.contacts))
    await env.send(change(hubspot_id, "firstname", "Lou", occurredAt=now_ms() + 1000))
    await env.process()
    env.salesforce.lock_rows(times=1)

    await env.deliver_once()

    row = await status(env)
    assert (row.breaker, row.consecutive_failures) == (Breaker.CLOSED, 0)


async def test_refused_credentials_pause_the_target_instead_of_killing_every_delivery(
    env: Env,
) -> None:
    env.configure(breaker_failures=2, salesforce_client_secret="revoked")
    await queue_creations(env, 2)

    for _ in range(2):
        await env.deliver_once()
        await env.make_due()

    deliveries = await env.deliveries()
    assert {d.status for d in deliveries} == {"pending"}
    assert "invalid_client" in (deliveries[0].last_error or "")
    row = await status(env)
    assert row.breaker == Breaker.OPEN
    assert "invalid_client" in (row.last_error or "")


async def test_transient_failures_retry_for_the_window_then_the_delivery_is_dead(
    env: Env,
) -> None:
    env.configure(retry_window_seconds=3600, max_attempts=1000)
    env.hubspot.add_contact(email="slowlock@example.com", lastname="Lock")
    hubspot_id = next(iter(env.hubspot.contacts))
    await env.sync(event("contact.creation", hubspot_id))
    await env.send(change(hubspot_id, "firstname", "Len", occurredAt=now_ms() + 1000))
    await env.process()
    env.salesforce.lock_rows(times=None)

    await env.deliver_once()
    [_, delivery] = await env.deliveries()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    first_failure = delivery.retrying_since
    assert first_failure is not None
    await env.make_due()
    await env.deliver_once()
    [_, delivery] = await env.deliveries()
    assert (delivery.status, delivery.retrying_since) == ("pending", first_failure)

    async with transaction(env.session_factory) as session:  # 61 minutes later
        await session.execute(
            update(Delivery)
            .where(Delivery.id == delivery.id)
            .values(retrying_since=utc_now() - timedelta(minutes=61))
        )
    await env.make_due()
    await env.deliver_once()

    [_, delivery] = await env.deliveries()
    assert (delivery.status, delivery.attempts) == ("dead", 3)
    assert "UNABLE_TO_LOCK_ROW" in (delivery.last_error or "")


async def test_a_success_ends_the_retry_window(env: Env) -> None:
    await queue_creations(env, 1)
    env.salesforce.fail_next(1, status=503, path="/query")
    await env.deliver_once()
    [delivery] = await env.deliveries()
    assert delivery.retrying_since is not None
    await env.make_due()

    await env.deliver_once()

    [delivery] = await env.deliveries()
    assert (delivery.status, delivery.retrying_since) == ("done", None)


async def test_hubspots_daily_limit_opens_the_hubspot_breaker(env: Env) -> None:
    env.configure(breaker_failures=2)
    hubspot_id = env.hubspot.add_contact(email="daily@example.com", lastname="Daily")
    await env.sync(event("contact.creation", hubspot_id))
    contact = await env.contact(hubspot_id)
    async with transaction(env.session_factory) as session:
        session.add(
            Delivery(
                target="hubspot", operation="update", contact_id=contact.id, values={"city": "Oslo"}
            )
        )
    deliverer = HubSpotDeliverer(env.settings, env.session_factory, env.hubspot_client())
    # With Retry-After: without it the pause lasts until the next full hour, which a run at
    # hh:59:40 would sleep through.
    env.hubspot.rate_limit_next(1, policy="DAILY", retry_after=3600)

    for _ in range(3):
        await deliverer.run_once()
        await env.make_due()

    row = await status(env, "hubspot")
    assert row.breaker == Breaker.OPEN
    assert "DAILY" in (row.last_error or "") or "paused" in (row.last_error or "")
    # One call reached HubSpot; the next batch was held back by the pause it asked for.
    assert len(env.hubspot.requests_to("/batch/update")) == 1
    [delivery] = [d for d in await env.deliveries() if d.target == "hubspot"]
    assert (delivery.status, delivery.attempts) == ("pending", 2)
