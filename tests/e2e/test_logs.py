"""Logs are structured JSON with context, and never carry a secret, token or SessionId."""

import json
import time

import pytest
from fakes.hubspot import FakeHubSpot
from fakes.salesforce import FakeSalesforce
from support.service import (
    ADMIN_TOKEN,
    HUBSPOT_SECRET,
    Service,
    notification,
    property_change,
    salesforce_time,
    wait_until,
)

pytestmark = pytest.mark.e2e

SESSION_ID = "00D1I000003qqqE!AQsAQOjGFnFJzGPA12yhUGL9Aii0N6lADjH2bNUBHRer5QjjTq3_RbIz"


def test_logs_are_json_with_context_and_never_carry_secrets(
    service: Service, salesforce: FakeSalesforce, hubspot: FakeHubSpot
) -> None:
    salesforce.reject_records(
        lambda record: record.get("LastName") == "Invalid",
        status_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
        message="Last name may not be Invalid",
    )
    service.send_hubspot([property_change(1, "email", "first@example.com")])
    wait_until(lambda: salesforce.find_by_email("first@example.com"))
    salesforce.expire_tokens()  # the next call gets 401 and renews the token
    salesforce.fail_next(1, status=503, headers={"Retry-After": "0"})
    service.send_hubspot(
        [
            property_change(1, "firstname", "Renewed"),
            property_change(2, "email", "dead@example.com"),
            property_change(2, "lastname", "Invalid"),
        ]
    )
    wait_until(
        lambda: salesforce.find_by_email("first@example.com")[0].get("FirstName") == "Renewed"
    )
    wait_until(
        lambda: service.api.get("/api/deliveries", params={"status": "dead"}).json()["items"]
    )

    message = notification(
        "Lead",
        "00Q5g00009OmTestAA",
        Email="om@example.com",
        LastName="Om",
        Company="C",
        CreatedDate=salesforce_time(time.time()),
        LastModifiedDate=salesforce_time(time.time()),
    )
    body = service.send_salesforce([message], session_id=SESSION_ID)
    assert body.status_code == 200
    wait_until(lambda: hubspot.find_by_email("om@example.com"))
    bad = service.http.post(
        "/webhooks/hubspot", content=b"[]", headers={"X-HubSpot-Signature": "x" * 64}
    )
    assert bad.status_code == 401
    service.stop()

    tokens = {
        request.headers["authorization"].removeprefix("Bearer ")
        for fake in (salesforce, hubspot)
        for request in fake.requests
        if request.headers.get("authorization", "").startswith("Bearer ")
    }
    secrets = {
        ADMIN_TOKEN,
        HUBSPOT_SECRET,
        salesforce.client_secret,
        hubspot.access_token or "",
        SESSION_ID,
        SESSION_ID.split("!")[1],
        *tokens,
    } - {""}
    assert len(tokens) >= 3  # two Salesforce tokens (before and after expiry) and HubSpot's
    lines = [line for line in service.logs().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    assert all({"ts", "level", "logger", "msg"} <= entry.keys() for entry in entries)
    for line in lines:
        for secret in secrets:
            assert secret not in line, f"a secret reached the log: {line[:200]}"
    dead = [e for e in entries if "is dead" in e["msg"]]
    assert dead and dead[0].get("delivery_id") and dead[0].get("contact_id")
    assert any(e.get("event_id") for e in entries)
