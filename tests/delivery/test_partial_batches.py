"""While the inbox has a backlog, a partial batch waits a moment for more records; nothing else
waits."""

from datetime import timedelta

import pytest
from delivery.harness import Env

from syncgate.delivery import base
from syncgate.delivery.salesforce import SalesforceDeliverer
from syncgate.models import utc_now

HOLD = timedelta(minutes=5)  # long enough that a slow run never sees a young batch grow old


@pytest.fixture(autouse=True)
def _hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "HOLD_PARTIAL_BATCH", HOLD)


async def _send_once(env: Env, *, backlog: bool) -> int:
    deliverer = SalesforceDeliverer(env.settings, env.session_factory, env.salesforce_client())
    return await deliverer.run_once(backlog=backlog)


async def test_a_young_partial_batch_waits_while_the_inbox_has_a_backlog(env: Env) -> None:
    await env.queue_creates(10)

    assert await _send_once(env, backlog=True) == 0
    assert env.salesforce.writes == []


async def test_a_partial_batch_older_than_the_hold_goes_out(env: Env) -> None:
    await env.queue_creates(10, created_at=utc_now() - 2 * HOLD)
    await env.queue_creates(5)  # the oldest due delivery decides

    assert await _send_once(env, backlog=True) == 15
    assert env.salesforce.records_per_write_call == [15]


@pytest.mark.parametrize("waiting", [200, 450])
async def test_a_full_batch_goes_out_at_once(env: Env, waiting: int) -> None:
    await env.queue_creates(waiting)

    assert await _send_once(env, backlog=True) == 200
    assert env.salesforce.records_per_write_call == [200]


async def test_without_a_backlog_a_partial_batch_goes_out_at_once(env: Env) -> None:
    await env.queue_creates(10)

    assert await _send_once(env, backlog=False) == 10
