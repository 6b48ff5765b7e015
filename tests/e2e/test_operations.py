"""Operator jobs and explanations through the real service process and the fake platforms."""

from typing import Any

import pytest
from fakes.hubspot import FakeHubSpot
from fakes.salesforce import FakeSalesforce
from support.service import Service, property_change, wait_until

pytestmark = pytest.mark.e2e

CUSTOMERS = {"property": "lifecyclestage", "operator": "eq", "value": "customer"}


def job_done(service: Service, job_id: int) -> dict[str, Any] | None:
    job = service.api.get(f"/api/jobs/{job_id}").json()
    assert job["status"] != "failed", job
    return job if job["status"] == "done" else None


def segment(service: Service, name: str, filter_: dict[str, Any]) -> int:
    response = service.api.post(
        "/api/segments", json={"name": name, "type": "active", "filter": filter_}
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_backfill_reads_every_hubspot_contact_and_forwards_nothing(
    service: Service, hubspot: FakeHubSpot, salesforce: FakeSalesforce
) -> None:
    for i in range(250):
        hubspot.add_contact(
            email=f"old{i}@example.com", lifecyclestage="customer" if i % 5 == 0 else "lead"
        )
    segment_id = segment(service, "Customers", CUSTOMERS)
    assert service.api.get(f"/api/segments/{segment_id}").json()["size"] == 0

    response = service.api.post("/api/backfill/hubspot")
    assert response.status_code == 202
    job = wait_until(lambda: job_done(service, response.json()["job_id"]), timeout=60)
    assert (job["kind"], job["total"], job["succeeded"]) == ("hubspot_backfill", 250, 250)
    ready = service.api.get(f"/api/segments/{segment_id}").json()
    assert (ready["status"], ready["size"]) == ("ready", 50)
    assert salesforce.write_calls == 0


def test_resync_sends_every_member_that_passes_the_gate(
    service: Service, salesforce: FakeSalesforce
) -> None:
    inclusion = segment(service, "Customers", CUSTOMERS)
    everyone = segment(service, "Everyone", {"property": "email", "operator": "is_known"})
    service.api.put("/api/settings/inclusion-segment", json={"segment_id": inclusion})
    service.send_hubspot(
        [property_change(900 + i, "email", f"r{i}@example.com") for i in range(6)]
        + [property_change(900 + i, "lifecyclestage", "customer") for i in range(3)]
    )
    # Members of the inclusion segment synced on joining; now resync everyone.
    wait_until(lambda: all(salesforce.find_by_email(f"r{i}@example.com") for i in range(3)))
    response = service.api.post(f"/api/segments/{everyone}/resync")
    assert response.status_code == 202
    job = wait_until(lambda: job_done(service, response.json()["job_id"]))
    assert (job["total"], job["succeeded"], job["skipped"]) == (6, 3, 3)
    assert not any(salesforce.find_by_email(f"r{i}@example.com") for i in range(3, 6))


def test_import_brings_only_the_email_for_contacts_outside_the_segment(
    service: Service, hubspot: FakeHubSpot, salesforce: FakeSalesforce
) -> None:
    inclusion = segment(service, "Customers", CUSTOMERS)
    service.api.put("/api/settings/inclusion-segment", json={"segment_id": inclusion})
    outside = salesforce.add_record(
        "Lead", Email="outside@example.com", FirstName="Olga", LastName="O", Company="C"
    )
    response = service.api.post(
        "/api/imports/salesforce", json={"object": "Lead", "ids": [outside]}
    )
    assert response.status_code == 202
    wait_until(lambda: job_done(service, response.json()["job_id"]))
    created = wait_until(lambda: hubspot.find_by_email("outside@example.com"))
    assert created["properties"].get("firstname") in (None, "")

    service.api.delete("/api/settings/inclusion-segment")
    everyone = salesforce.add_record(
        "Lead", Email="all@example.com", FirstName="Alma", LastName="A", Company="C"
    )
    response = service.api.post(
        "/api/imports/salesforce", json={"object": "Lead", "ids": [everyone, "00Q000000000000AAA"]}
    )
    job = wait_until(lambda: job_done(service, response.json()["job_id"]))
    assert (job["succeeded"], job["skipped"]) == (1, 1)
    full = wait_until(lambda: hubspot.find_by_email("all@example.com"))
    assert full["properties"]["firstname"] == "Alma"


def test_sync_status_explains_the_failing_segment_condition(service: Service) -> None:
    inclusion = segment(service, "Customers", CUSTOMERS)
    service.api.put("/api/settings/inclusion-segment", json={"segment_id": inclusion})
    service.send_hubspot(
        [
            property_change(950, "email", "why@example.com"),
            property_change(950, "lifecyclestage", "lead"),
        ]
    )
    contact = wait_until(
        lambda: service.api.get("/api/contacts", params={"email": "why@example.com"}).json()[
            "items"
        ]
    )[0]
    wait_until(lambda: len(service.decisions(contact_id=contact["id"])) == 2)
    status = service.api.get(f"/api/contacts/{contact['id']}/sync-status").json()
    assert status["in_inclusion_segment"] is False and status["would_sync"] is False
    assert "lifecyclestage eq 'customer' fails: lifecyclestage is 'lead'" in status["reason"]
    assert [d["decision"] for d in status["last_decisions"]] == ["skipped_not_in_segment"] * 2
    assert status["pending_deliveries"] == 0


def test_dead_delivery_is_explained_and_replayed_with_its_history(
    service: Service, salesforce: FakeSalesforce
) -> None:
    salesforce.reject_records(
        lambda record: record.get("LastName") == "Invalid",
        status_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
        message="Last name may not be Invalid",
        times=1,
    )
    service.send_hubspot(
        [
            property_change(970, "email", "dead@example.com"),
            property_change(970, "lastname", "Invalid"),
        ]
    )
    dead = wait_until(
        lambda: service.api.get("/api/deliveries", params={"status": "dead"}).json()["items"]
    )
    assert "Last name may not be Invalid" in dead[0]["last_error"]
    status = service.api.get(f"/api/contacts/{dead[0]['contact_id']}/sync-status").json()
    assert "dead" in status["reason"] and "Last name may not be Invalid" in status["reason"]

    assert service.api.post(f"/api/deliveries/{dead[0]['id']}/retry").status_code == 202
    done = wait_until(
        lambda: service.api.get("/api/deliveries", params={"status": "done"}).json()["items"]
    )
    assert [h["outcome"] for h in done[0]["history"]] == ["dead", "done"]
    assert salesforce.find_by_email("dead@example.com")
