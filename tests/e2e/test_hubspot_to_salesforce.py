"""HubSpot → Salesforce through the real service process and the fake platforms."""

import os
from collections.abc import Callable
from typing import Any

import pytest
from fakes.hubspot import FakeHubSpot
from fakes.salesforce import FakeSalesforce
from support.service import Service, hubspot_event, property_change, wait_until

pytestmark = pytest.mark.e2e


def lead_for(salesforce: FakeSalesforce, email: str) -> dict[str, Any] | None:
    found = salesforce.find_by_email(email)
    return found[0] if found else None


def create_active_segment(service: Service, name: str, filter_: dict[str, Any]) -> int:
    response = service.api.post(
        "/api/segments", json={"name": name, "type": "active", "filter": filter_}
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_new_hubspot_contact_is_created_in_salesforce_with_every_mapped_field(
    service: Service, hubspot: FakeHubSpot, salesforce: FakeSalesforce
) -> None:
    contact_id = hubspot.add_contact(
        email="ada@example.com",
        firstname="Ada",
        lastname="Lovelace",
        company="Engines",
        jobtitle="Analyst",
    )
    response = service.send_hubspot([hubspot_event("contact.creation", contact_id)])
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0}

    lead = wait_until(lambda: lead_for(salesforce, "ada@example.com"))
    assert lead["attributes"]["type"] == "Lead"
    assert (lead["FirstName"], lead["LastName"], lead["Company"], lead["Title"]) == (
        "Ada",
        "Lovelace",
        "Engines",
        "Analyst",
    )


def test_in_segment_change_arrives_and_out_of_segment_change_does_not(
    service: Service, salesforce: FakeSalesforce
) -> None:
    segment_id = create_active_segment(
        service, "Customers", {"property": "lifecyclestage", "operator": "eq", "value": "customer"}
    )
    assert (
        service.api.put(
            "/api/settings/inclusion-segment", json={"segment_id": segment_id}
        ).status_code
        == 200
    )

    service.send_hubspot(
        [
            property_change(101, "email", "inside@example.com"),
            property_change(101, "lifecyclestage", "customer"),
            property_change(102, "email", "outside@example.com"),
            property_change(102, "lifecyclestage", "lead"),
        ]
    )
    inside = wait_until(lambda: lead_for(salesforce, "inside@example.com"))
    service.send_hubspot(
        [
            property_change(101, "firstname", "Grace"),
            property_change(102, "firstname", "Hidden"),
        ]
    )
    wait_until(
        lambda: (lead_for(salesforce, "inside@example.com") or {}).get("FirstName") == "Grace"
    )
    assert inside["LastName"] == "[not provided]" and inside["Company"] == "[not provided]"
    assert lead_for(salesforce, "outside@example.com") is None


def test_setting_the_inclusion_segment_sends_nothing_by_itself(
    service: Service, salesforce: FakeSalesforce
) -> None:
    segment_id = create_active_segment(
        service, "Customers", {"property": "lifecyclestage", "operator": "eq", "value": "customer"}
    )
    # Contacts known while nothing is gated: each syncs once.
    service.send_hubspot([property_change(201, "email", "early@example.com")])
    wait_until(lambda: lead_for(salesforce, "early@example.com"))
    writes_before = salesforce.write_calls

    service.send_hubspot([property_change(202, "lifecyclestage", "customer")])
    assert (
        service.api.put(
            "/api/settings/inclusion-segment", json={"segment_id": segment_id}
        ).status_code
        == 200
    )
    assert service.api.delete("/api/settings/inclusion-segment").status_code == 204
    assert (
        service.api.put(
            "/api/settings/inclusion-segment", json={"segment_id": segment_id}
        ).status_code
        == 200
    )
    assert (
        service.api.patch(
            f"/api/segments/{segment_id}",
            json={"filter": {"property": "email", "operator": "is_known"}},
        ).status_code
        == 200
    )

    # A sentinel change that must sync proves the worker ran past the settings changes.
    service.send_hubspot([property_change(201, "firstname", "Sentinel")])
    wait_until(
        lambda: (lead_for(salesforce, "early@example.com") or {}).get("FirstName") == "Sentinel"
    )
    assert salesforce.write_calls == writes_before + 1


def test_joining_the_inclusion_segment_sends_every_mapped_field(
    service: Service, salesforce: FakeSalesforce
) -> None:
    segment_id = create_active_segment(
        service, "Customers", {"property": "lifecyclestage", "operator": "eq", "value": "customer"}
    )
    service.api.put("/api/settings/inclusion-segment", json={"segment_id": segment_id})
    service.send_hubspot(
        [
            property_change(301, "email", "joiner@example.com"),
            property_change(301, "firstname", "Joan"),
            property_change(301, "lastname", "Clarke"),
            property_change(301, "company", "Hut 8"),
            property_change(301, "lifecyclestage", "lead"),
        ]
    )
    service.send_hubspot([property_change(301, "lifecyclestage", "customer")])
    lead = wait_until(lambda: lead_for(salesforce, "joiner@example.com"))
    assert (lead["FirstName"], lead["LastName"], lead["Company"]) == ("Joan", "Clarke", "Hut 8")


def test_duplicate_deliveries_of_an_event_are_sent_once(
    service: Service, salesforce: FakeSalesforce
) -> None:
    event = property_change(401, "email", "once@example.com")
    first = service.send_hubspot([event])
    again = service.send_hubspot([{**event, "attemptNumber": 1}])
    both = service.send_hubspot([event, {**event, "attemptNumber": 2}])
    assert first.json() == {"accepted": 1, "duplicates": 0}
    assert again.json() == {"accepted": 0, "duplicates": 1}
    assert both.json() == {"accepted": 0, "duplicates": 2}
    wait_until(lambda: lead_for(salesforce, "once@example.com"))
    service.send_hubspot([property_change(401, "firstname", "Sentinel")])
    wait_until(
        lambda: (lead_for(salesforce, "once@example.com") or {}).get("FirstName") == "Sentinel"
    )
    assert len(salesforce.find_by_email("once@example.com")) == 1
    assert salesforce.write_calls == 2


def test_out_of_order_events_never_let_an_older_value_win(
    service: Service, salesforce: FakeSalesforce
) -> None:
    service.send_hubspot([property_change(501, "email", "order@example.com", occurredAt=1_000)])
    wait_until(lambda: lead_for(salesforce, "order@example.com"))
    service.send_hubspot([property_change(501, "firstname", "Newer", occurredAt=3_000)])
    wait_until(
        lambda: (lead_for(salesforce, "order@example.com") or {}).get("FirstName") == "Newer"
    )
    service.send_hubspot([property_change(501, "firstname", "Older", occurredAt=2_000)])
    service.send_hubspot([property_change(501, "lastname", "Sentinel", occurredAt=4_000)])
    wait_until(
        lambda: (lead_for(salesforce, "order@example.com") or {}).get("LastName") == "Sentinel"
    )
    assert lead_for(salesforce, "order@example.com")["FirstName"] == "Newer"  # type: ignore[index]


def test_sigkill_after_acknowledgement_loses_nothing(
    make_service: Callable[..., Service], salesforce: FakeSalesforce
) -> None:
    intake = make_service().start(worker=False)
    emails = [f"durable{i}@example.com" for i in range(150)]
    for start in range(0, len(emails), 50):
        events = [property_change(6000 + i, "email", emails[i]) for i in range(start, start + 50)]
        assert intake.send_hubspot(events).json()["accepted"] == 50
    intake.kill()

    restarted = make_service().start()
    wait_until(lambda: all(salesforce.find_by_email(email) for email in emails), timeout=60)
    restarted.kill()
    assert all(len(salesforce.find_by_email(email)) == 1 for email in emails)


@pytest.mark.skipif(
    not os.environ.get("SYNCGATE_TEST_DATABASE_URL"), reason="several workers need PostgreSQL"
)
def test_two_workers_on_postgresql_send_each_record_once(
    make_service: Callable[..., Service], salesforce: FakeSalesforce
) -> None:
    service = make_service().start(worker=False, extra_workers=2)
    emails = [f"pair{i}@example.com" for i in range(400)]
    for start in range(0, len(emails), 100):
        events = [property_change(7000 + i, "email", emails[i]) for i in range(start, start + 100)]
        service.send_hubspot(events)
    for i in range(0, 400, 3):  # later changes racing with the first deliveries
        service.send_hubspot([property_change(7000 + i, "firstname", f"F{i}")])
    wait_until(lambda: all(salesforce.find_by_email(email) for email in emails), timeout=90)
    wait_until(
        lambda: all(
            salesforce.find_by_email(emails[i])[0].get("FirstName") == f"F{i}"
            for i in range(0, 400, 3)
        ),
        timeout=60,
    )
    assert all(len(salesforce.find_by_email(email)) == 1 for email in emails)
    created = sum(call.size for call in salesforce.writes if call.operation == "create")
    assert created == 400
