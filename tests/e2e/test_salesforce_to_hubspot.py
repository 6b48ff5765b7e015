"""Salesforce → HubSpot through the real service process and the fake platforms."""

import time
from typing import Any

import pytest
from fakes.hubspot import FakeHubSpot
from fakes.salesforce import FakeSalesforce
from support.service import (
    Service,
    notification,
    property_change,
    salesforce_time,
    wait_until,
)

pytestmark = pytest.mark.e2e

LEAD_ID = "00Q5g00003QbnlGEAR"
CONTACT_ID = "0035g00003QbnlGEAR"


def lead(
    record_id: str, email: str, *, created: float, modified: float | None = None, **fields: str
) -> dict[str, Any]:
    return notification(
        "Lead",
        record_id,
        Email=email,
        CreatedDate=salesforce_time(created),
        LastModifiedDate=salesforce_time(modified if modified is not None else created),
        **fields,
    )


def set_customers_as_inclusion_segment(service: Service) -> int:
    response = service.api.post(
        "/api/segments",
        json={
            "name": "Customers",
            "type": "active",
            "filter": {"property": "lifecyclestage", "operator": "eq", "value": "customer"},
        },
    )
    segment_id = int(response.json()["id"])
    assert (
        service.api.put(
            "/api/settings/inclusion-segment", json={"segment_id": segment_id}
        ).status_code
        == 200
    )
    return segment_id


def decisions_for(service: Service, kind: str) -> list[dict[str, Any]]:
    return service.decisions(direction="salesforce_to_hubspot", decision=kind)


def hubspot_firstname(hubspot: FakeHubSpot, email: str) -> str | None:
    contact = hubspot.find_by_email(email)
    return None if contact is None else contact["properties"].get("firstname")


def test_new_lead_outside_the_segment_creates_a_hubspot_contact_and_its_later_update_does_not_sync(
    service: Service, hubspot: FakeHubSpot
) -> None:
    set_customers_as_inclusion_segment(service)
    now = time.time() - 60
    response = service.send_salesforce(
        [
            lead(
                LEAD_ID,
                "new.lead@example.com",
                created=now,
                FirstName="Nia",
                LastName="Lead",
                Company="Acme",
            )
        ]
    )
    assert response.status_code == 200
    assert b"<Ack>true</Ack>" in response.content

    created = wait_until(lambda: hubspot.find_by_email("new.lead@example.com"))
    assert created["properties"]["firstname"] == "Nia"
    assert created["properties"]["company"] == "Acme"
    assert decisions_for(service, "created_outside_segment")

    service.send_salesforce(
        [
            lead(
                LEAD_ID,
                "new.lead@example.com",
                created=now,
                modified=now + 30,
                FirstName="Changed",
                LastName="Lead",
                Company="Acme",
            )
        ]
    )
    wait_until(lambda: decisions_for(service, "skipped_not_in_segment"))
    assert hubspot_firstname(hubspot, "new.lead@example.com") == "Nia"


def test_update_inside_the_segment_is_sent_and_outside_is_not(
    service: Service, hubspot: FakeHubSpot, salesforce: FakeSalesforce
) -> None:
    set_customers_as_inclusion_segment(service)
    inside_id = hubspot.add_contact(
        email="in@example.com", firstname="In", lifecyclestage="customer"
    )
    outside_id = hubspot.add_contact(
        email="out@example.com", firstname="Out", lifecyclestage="lead"
    )
    service.send_hubspot(
        [
            property_change(inside_id, "email", "in@example.com"),
            property_change(inside_id, "lifecyclestage", "customer"),
            property_change(outside_id, "email", "out@example.com"),
            property_change(outside_id, "lifecyclestage", "lead"),
        ]
    )
    wait_until(lambda: salesforce.find_by_email("in@example.com"))
    inside_record = salesforce.find_by_email("in@example.com")[0]["Id"]

    later = time.time() + 5
    service.send_salesforce(
        [
            lead(
                inside_record,
                "in@example.com",
                created=later - 3600,
                modified=later,
                FirstName="Inside2",
                LastName="X",
                Company="Y",
            ),
            lead(
                "00Q5g00003QbnlHEAR",
                "out@example.com",
                created=later - 3600,
                modified=later,
                FirstName="Outside2",
                LastName="X",
                Company="Y",
            ),
        ]
    )
    wait_until(lambda: hubspot.get_contact(inside_id)["properties"]["firstname"] == "Inside2")  # type: ignore[index]
    wait_until(lambda: decisions_for(service, "skipped_not_in_segment"))
    assert hubspot.get_contact(outside_id)["properties"]["firstname"] == "Out"  # type: ignore[index]


def test_with_auto_create_off_a_new_lead_creates_nothing(
    service: Service, hubspot: FakeHubSpot
) -> None:
    patched = service.api.patch(
        "/api/settings", json={"create_hubspot_contacts_from": {"leads": False}}
    )
    assert patched.json()["create_hubspot_contacts_from"] == {"leads": False, "contacts": True}
    service.send_salesforce(
        [lead(LEAD_ID, "nobody@example.com", created=time.time(), LastName="N", Company="C")]
    )
    ignored = wait_until(lambda: decisions_for(service, "ignored"))
    assert "off" in ignored[0]["detail"]["reason"]
    assert hubspot.find_by_email("nobody@example.com") is None


def test_stale_and_duplicate_notifications_are_skipped(
    service: Service, hubspot: FakeHubSpot
) -> None:
    # Edits made in Salesforce after syncgate's own write to HubSpot (two-way: latest wins).
    start = time.time()
    first = lead(
        LEAD_ID, "order@example.com", created=start, FirstName="First", LastName="L", Company="C"
    )
    assert service.send_salesforce([first]).status_code == 200
    wait_until(lambda: hubspot.find_by_email("order@example.com"))
    newer = lead(
        LEAD_ID,
        "order@example.com",
        created=start,
        modified=start + 200,
        FirstName="Newer",
        LastName="L",
        Company="C",
    )
    older = lead(
        LEAD_ID,
        "order@example.com",
        created=start,
        modified=start + 100,
        FirstName="Older",
        LastName="L",
        Company="C",
    )
    service.send_salesforce([newer])
    wait_until(lambda: hubspot_firstname(hubspot, "order@example.com") == "Newer")
    service.send_salesforce([older])
    service.send_salesforce([newer])  # the same notification again: a duplicate
    wait_until(lambda: decisions_for(service, "skipped_stale"))
    assert hubspot_firstname(hubspot, "order@example.com") == "Newer"
    assert len(service.decisions(direction="salesforce_to_hubspot")) == 3


def test_echo_of_our_own_write_is_skipped_no_change(
    service: Service, hubspot: FakeHubSpot, salesforce: FakeSalesforce
) -> None:
    contact_id = hubspot.add_contact(email="echo@example.com", firstname="Echo", lastname="Back")
    service.send_hubspot(
        [
            property_change(contact_id, "email", "echo@example.com"),
            property_change(contact_id, "firstname", "Echo"),
            property_change(contact_id, "lastname", "Back"),
        ]
    )
    record = wait_until(lambda: salesforce.find_by_email("echo@example.com"))[0]
    [delivery] = wait_until(
        lambda: service.api.get("/api/deliveries", params={"status": "done"}).json()["items"]
    )
    # Salesforce's Outbound Message for the record syncgate created carries what syncgate wrote,
    # and fields the record got in Salesforce (a default, an owner) that syncgate never saw.
    service.send_salesforce(
        [
            notification(
                "Lead",
                record["Id"],
                Email="echo@example.com",
                FirstName="Echo",
                LastName="Back",
                Company="[not provided]",
                LeadSource="Web",
                CreatedDate=record["CreatedDate"].replace("+0000", "Z"),
                LastModifiedDate=record["LastModifiedDate"].replace("+0000", "Z"),
            )
        ]
    )
    [echo] = wait_until(lambda: decisions_for(service, "skipped_no_change"))
    assert echo["contact_id"] is not None
    assert f"echo of delivery {delivery['id']}" in echo["detail"]["reason"]
    assert hubspot.write_calls == 0
