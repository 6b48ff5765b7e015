"""Database outage: the service's own PostgreSQL crashes during a run and comes back.

The test starts a throwaway PostgreSQL server (whatever SYNCGATE_TEST_DATABASE_URL says),
runs the service on it and stops the server with `pg_ctl stop -m immediate` while webhooks
arrive. During the outage /readyz answers 503, /livez 200, and both webhooks 503 quickly, so
the platforms retry; once the server is back, everything that was acknowledged, and everything
redelivered after the outage, reaches the other platform exactly once.
"""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.hubspot import FakeHubSpot
from fakes.salesforce import FakeSalesforce
from support.chaos import backlog, expire_leases
from support.postgres import ThrowawayPostgres, find_bin_dir
from support.service import (
    Service,
    notification,
    property_change,
    salesforce_time,
    wait_until,
)

from syncgate.db import create_sync_engine

pytestmark = pytest.mark.e2e

HUBSPOT_BUDGET = 5.0  # HubSpot gives up on a webhook call after 5 s
OUTAGE = 3.0  # seconds the database stays down


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with ThrowawayPostgres(bin_dir) as server:
        yield server


def ready(service: Service) -> int:
    try:
        return service.http.get("/readyz").status_code
    except httpx.TransportError:
        return 0


def changes(first: int, count: int, tag: str) -> list[dict[str, Any]]:
    events = []
    for n in range(first, first + count):
        events.append(property_change(9_000_000 + n, "email", f"db{n}@outage.example"))
        events.append(property_change(9_000_000 + n, "firstname", f"{tag}{n}"))
    return events


def new_lead(salesforce: FakeSalesforce, n: int) -> dict[str, Any]:
    email = f"lead{n}@outage.example"
    fields = {"Email": email, "FirstName": f"Lead{n}", "LastName": "Outage", "Company": "Db"}
    record_id = salesforce.add_record("Lead", fields)
    created = salesforce_time(time.time())
    return notification("Lead", record_id, **fields, CreatedDate=created, LastModifiedDate=created)


def test_database_outage_refuses_webhooks_and_loses_nothing_acknowledged(
    postgres: ThrowawayPostgres,
    platform_env: dict[str, str],
    salesforce: FakeSalesforce,
    hubspot: FakeHubSpot,
    tmp_path: Path,
) -> None:
    service = Service({**platform_env, "SYNCGATE_DATABASE_URL": postgres.url}, tmp_path)
    engine = create_sync_engine(postgres.url)
    try:
        service.start()
        # Acknowledged and delivered before the outage.
        assert service.send_hubspot(changes(0, 40, "Before")).status_code == 200
        assert service.send_salesforce([new_lead(salesforce, 0)]).status_code == 200
        # Acknowledged just before the outage: maybe processed, maybe not, maybe half-way.
        wait_until(lambda: len(salesforce.records) > 10, timeout=30)
        assert service.send_hubspot(changes(40, 40, "Last")).status_code == 200

        postgres.stop("immediate")
        down = time.monotonic()
        wait_until(lambda: ready(service) == 503, timeout=5)
        print(f"/readyz 503 after {time.monotonic() - down:.2f} s")
        assert service.http.get("/livez").status_code == 200

        refused_hubspot = changes(80, 40, "During")
        refused_salesforce = [new_lead(salesforce, 1), new_lead(salesforce, 2)]
        while time.monotonic() - down < OUTAGE:
            began = time.monotonic()
            response = service.send_hubspot(refused_hubspot)
            latency = time.monotonic() - began
            assert response.status_code == 503, response.text
            assert response.json()["code"] == "store_unavailable"
            assert latency < HUBSPOT_BUDGET, f"HubSpot webhook answered after {latency:.1f} s"
            began = time.monotonic()
            response = service.send_salesforce(refused_salesforce)
            latency = time.monotonic() - began
            assert response.status_code == 503, response.text
            assert "soapenv:Fault" in response.text or "Fault" in response.text
            assert latency < HUBSPOT_BUDGET, f"Outbound Message answered after {latency:.1f} s"
            assert ready(service) == 503
            time.sleep(0.3)

        restart = time.monotonic()
        postgres.start()
        wait_until(lambda: ready(service) == 200, timeout=15)
        print(f"/readyz 200 {time.monotonic() - restart:.2f} s after the restart began")
        # A worker claim cut short by the outage waits out its lease (minutes): let it run
        # out now. Live claims (those that change within 3 s) are left alone.
        print("released after the outage:", expire_leases(engine, settle=3.0))

        # The platforms redeliver what was refused.
        assert service.send_hubspot(refused_hubspot).status_code == 200
        assert service.send_salesforce(refused_salesforce).status_code == 200

        emails = [f"db{n}@outage.example" for n in range(120)]
        wait_until(lambda: all(salesforce.find_by_email(e) for e in emails), timeout=45)
        wait_until(lambda: backlog(engine).drained, timeout=30)
        assert backlog(engine).inbox_failed == 0 and backlog(engine).deliveries_dead == 0
        for n, email in enumerate(emails):
            records = salesforce.find_by_email(email)
            assert len(records) == 1, records
            tag = "Before" if n < 40 else "Last" if n < 80 else "During"
            assert records[0]["FirstName"] == f"{tag}{n}"
        created = sum(call.size for call in salesforce.writes if call.operation == "create")
        assert created == len(emails)  # each record created once
        for n in range(3):
            contact = hubspot.find_by_email(f"lead{n}@outage.example")
            assert contact is not None and contact["properties"]["firstname"] == f"Lead{n}"
        assert len(hubspot.contacts) == 3
    except BaseException:
        print(service.logs()[-10000:])
        print(postgres.server_log())
        raise
    finally:
        service.stop()
        engine.dispose()
