"""While the inbox has a backlog, a partial batch waits a moment for more records; nothing else
waits."""

from datetime import timedelta

import pytest
from delivery.harness import Env

from syncgate.db import transaction
from syncgate.delivery.base import HOLD_PARTIAL_BATCH
from syncgate.delivery.models import Delivery, Operation, Target
from syncgate.delivery.salesforce import SalesforceDeliverer
from syncgate.models import utc_now
from syncgate.sync.models import Contact


async def _queue(env: Env, count: int, *, age: timedelta = timedelta()) -> None:
    created_at = utc_now() - age
    async with transaction(env.session_factory) as session:
        start = len(await env.deliveries())
        contacts = [
            Contact(hubspot_id=str(5000 + start + i), email=f"p{start + i}@example.com")
            for i in range(count)
        ]
        session.add_all(contacts)
        await session.flush()
        session.add_all(
            Delivery(
                target=Target.SALESFORCE,
                operation=Operation.CREATE,
                contact_id=contact.id,
                values={"email": contact.email, "lastname": "Partial"},
                created_at=created_at,
                history=[],
            )
            for contact in contacts
        )


async def _send_once(env: Env, *, backlog: bool) -> int:
    deliverer = SalesforceDeliverer(env.settings, env.session_factory, env.salesforce_client())
    return await deliverer.run_once(backlog=backlog)


async def test_a_young_partial_batch_waits_while_the_inbox_has_a_backlog(env: Env) -> None:
    await _queue(env, 10)

    assert await _send_once(env, backlog=True) == 0
    assert env.salesforce.writes == []


async def test_a_partial_batch_older_than_the_hold_goes_out(env: Env) -> None:
    await _queue(env, 10, age=HOLD_PARTIAL_BATCH * 2)
    await _queue(env, 5)  # the oldest due delivery decides

    assert await _send_once(env, backlog=True) == 15
    assert env.salesforce.records_per_write_call == [15]


@pytest.mark.parametrize("waiting", [200, 450])
async def test_a_full_batch_goes_out_at_once(env: Env, waiting: int) -> None:
    await _queue(env, waiting)

    assert await _send_once(env, backlog=True) == 200
    assert env.salesforce.records_per_write_call == [200]


async def test_without_a_backlog_a_partial_batch_goes_out_at_once(env: Env) -> None:
    await _queue(env, 10)

    assert await _send_once(env, backlog=False) == 10
