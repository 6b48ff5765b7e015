"""Logs are structured JSON with context, and never carry a secret, token or SessionId."""

import json
import time
from collections.abc import Callable

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


def test_one_access_line_per_request_without_the_query_and_quiet_probes(
    make_service: Callable[..., Service],
) -> None:
    service = make_service().start()  # polls /readyz until it answers
    for _ in range(3):
        assert service.http.get("/livez").status_code == 200
        assert service.http.get("/metrics").status_code == 200
    token = "never-logged-query-token"
    assert service.http.post(f"/webhooks/salesforce?token={token}", content=b"<x/>").status_code
    assert service.api.get("/api/segments", params={"limit": 5}).status_code == 200
    service.stop()

    entries = [json.loads(line) for line in service.logs().splitlines() if line.strip()]
    access = [e for e in entries if e["logger"] == "syncgate.access"]
    assert [(e["method"], e["path"]) for e in access] == [
        ("POST", "/webhooks/salesforce"),
        ("GET", "/api/segments"),
    ]
    assert access[0]["status"] == 400 and access[0]["duration_ms"] >= 0
    assert access[0]["msg"] == "POST /webhooks/salesforce 400"
    assert not any(token in json.dumps(e) for e in entries)
    # Libraries stay quiet: no plugin set-up at start, no dialect lines for each /readyz.
    assert not [e for e in entries if e["logger"].startswith("alembic")]


def test_log_level_setting(make_service: Callable[..., Service]) -> None:
    # Salesforce unconnected: one warning at start-up, and nothing below it (the webhook token
    # is set: without it, start-up warns about that too).
    service = make_service(
        SYNCGATE_LOG_LEVEL="warning",
        SYNCGATE_SALESFORCE_CLIENT_ID="",
        SYNCGATE_SALESFORCE_WEBHOOK_TOKEN="e2e-salesforce-webhook-token",
    )
    assert service.start().api.get("/api/segments").status_code == 200
    service.stop()
    levels = [json.loads(line)["level"] for line in service.logs().splitlines() if line.strip()]
    assert levels == ["warning"]

    service = make_service(SYNCGATE_LOG_LEVEL="debug").start()
    service.stop()
    probes = [line for line in service.logs().splitlines() if '"path": "/readyz"' in line]
    assert probes and all(json.loads(line)["level"] == "debug" for line in probes)
