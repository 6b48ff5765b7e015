"""Salesforce is fully down for a stretch of the run (a maintenance window: every call, the
token endpoint included, answers 503), while HubSpot keeps sending changes; then it is back.

The breaker opens after a few failed batches, and while it is open nothing is sent but one probe
call at growing intervals, so the attempts spent during the outage are bounded however long it
lasts and however much waits. The connections API says "Salesforce unavailable since …, N
waiting" meanwhile. Once Salesforce is back, a probe passes, the breaker closes, and every change
arrives exactly once; nothing is dead.
"""

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fakes.salesforce import FakeSalesforce
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from support.chaos import backlog
from support.service import Service, property_change, wait_until

from syncgate.delivery.models import Delivery

pytestmark = pytest.mark.e2e

FAILURES = 3  # failed batches in a row that open the breaker
PROBE_SECONDS, PROBE_MAX_SECONDS = 0.5, 2.0
OUTAGE_SECONDS = 6.0
BEFORE, DURING = 40, 60  # contacts created before the outage, and during it


def changes(first: int, count: int, tag: str) -> list[dict[str, Any]]:
    events = []
    for n in range(first, first + count):
        events.append(property_change(8_100_000 + n, "email", f"o{n}@outage.example"))
        events.append(property_change(8_100_000 + n, "firstname", f"{tag}{n}"))
    return events


def salesforce_connection(service: Service) -> dict[str, Any]:
    items = service.api.get("/api/connections").json()["items"]
    return next(item for item in items if item["platform"] == "salesforce")


def failed_batches(deliveries: list[Delivery], since: datetime) -> set[str]:
    """The moments at which a batch of deliveries failed (one settle stamps one moment)."""
    return {
        h["at"]
        for d in deliveries
        for h in d.history
        if h["outcome"] == "retry" and datetime.fromisoformat(h["at"]) >= since
    }


def test_salesforce_down_for_a_while_costs_bounded_attempts_and_loses_nothing(
    platform_env: dict[str, str],
    database_url: str,
    salesforce: FakeSalesforce,
    sync_engine: Engine,
    tmp_path: Path,
) -> None:
    env = {
        **platform_env,
        "SYNCGATE_DATABASE_URL": database_url,
        "SYNCGATE_RETRY_BASE_SECONDS": "0.2",
        "SYNCGATE_RETRY_MAX_SECONDS": "1",
        "SYNCGATE_BREAKER_FAILURES": str(FAILURES),
        "SYNCGATE_BREAKER_PROBE_SECONDS": str(PROBE_SECONDS),
        "SYNCGATE_BREAKER_PROBE_MAX_SECONDS": str(PROBE_MAX_SECONDS),
    }
    service = Service(env, tmp_path).start()
    try:
        assert service.send_hubspot(changes(0, BEFORE, "Before")).status_code == 200
        wait_until(lambda: len(salesforce.records) == BEFORE, timeout=30)
        wait_until(lambda: backlog(sync_engine).drained, timeout=30)

        salesforce.go_down(503)
        down_at = datetime.now().astimezone()
        calls_before = len(salesforce.requests)
        # Changes keep coming: updates of known contacts and new ones, in three waves.
        service.send_hubspot(changes(0, BEFORE, "During"))
        wait_until(lambda: salesforce_connection(service)["state"] == "unavailable", timeout=20)
        opened = salesforce_connection(service)
        service.send_hubspot(changes(BEFORE, DURING // 2, "New"))
        time.sleep(OUTAGE_SECONDS / 2)
        service.send_hubspot(changes(BEFORE + DURING // 2, DURING - DURING // 2, "New"))
        time.sleep(OUTAGE_SECONDS / 2)
        during = salesforce_connection(service)
        calls_during = len(salesforce.requests) - calls_before
        with Session(sync_engine) as session:
            outage_deliveries = list(session.scalars(select(Delivery)))
        salesforce.come_back()

        wait_until(lambda: backlog(sync_engine).drained, timeout=60)
        wait_until(lambda: salesforce_connection(service)["state"] == "available", timeout=20)
        after = salesforce_connection(service)
    except BaseException:
        print(service.logs()[-20000:])
        raise
    finally:
        service.stop()

    batches = failed_batches(outage_deliveries, down_at)
    print(
        f"{OUTAGE_SECONDS:.0f} s outage: {calls_during} calls reached Salesforce, "
        f"{len(batches)} batches failed, at most {max(d.attempts for d in outage_deliveries)} "
        f"attempts per delivery; {during['summary']}"
    )
    assert opened["summary"].startswith("Salesforce unavailable since ")
    assert during["summary"].endswith(f", {BEFORE + DURING} waiting"), during["summary"]
    assert during["breaker"] == "open" and during["last_error"]
    assert (after["breaker"], after["unavailable_since"]) == ("closed", None)

    # Bounded: the batches that opened the breaker, then one probe call at growing intervals.
    probes = 2 + int(OUTAGE_SECONDS / PROBE_MAX_SECONDS) + 2
    assert calls_during <= FAILURES + probes, calls_during
    assert len(batches) <= FAILURES
    assert max(d.attempts for d in outage_deliveries) <= FAILURES + 1
    news = [d for d in outage_deliveries if d.values.get("firstname", "").startswith("New")]
    assert news and all(d.attempts == 0 for d in news)  # queued while open: never tried

    assert backlog(sync_engine).deliveries_dead == 0
    for n in range(BEFORE + DURING):
        [record] = salesforce.find_by_email(f"o{n}@outage.example")
        assert record["FirstName"] == (f"During{n}" if n < BEFORE else f"New{n}")
    assert len(salesforce.records) == BEFORE + DURING
