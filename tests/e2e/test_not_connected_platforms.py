"""A platform without API credentials is visible everywhere, and nothing waiting for it is
lost: the changes go once the credentials are set."""

import json
from collections.abc import Callable

import pytest
from fakes.salesforce import FakeSalesforce
from support.service import Service, property_change, wait_until

pytestmark = pytest.mark.e2e


def test_an_unconnected_platform_is_visible_and_its_changes_wait_until_it_is_connected(
    make_service: Callable[..., Service], salesforce: FakeSalesforce
) -> None:
    service = make_service(SYNCGATE_SALESFORCE_CLIENT_ID="").start()
    assert (
        service.send_hubspot([property_change(5, "email", "wait@example.com")]).status_code == 200
    )
    waiting = wait_until(
        lambda: [
            d
            for d in service.api.get("/api/deliveries", params={"status": "pending"}).json()[
                "items"
            ]
            if d["last_error"] == "Salesforce is not connected"
        ]
    )
    assert waiting[0]["target"] == "salesforce"
    contact_id = waiting[0]["contact_id"]
    status = service.api.get(f"/api/contacts/{contact_id}/sync-status").json()
    assert status["would_sync"] is True
    assert "Salesforce is not connected" in status["reason"]
    assert status["pending_deliveries"] == 1

    segment = service.api.post(
        "/api/segments",
        json={
            "name": "All",
            "type": "active",
            "filter": {"property": "email", "operator": "is_known"},
        },
    ).json()
    for response in (
        service.api.post(f"/api/segments/{segment['id']}/resync"),
        service.api.post(
            "/api/imports/salesforce", json={"object": "Lead", "ids": ["00Q5g00009OmTestAA"]}
        ),
    ):
        assert response.status_code == 409
        assert response.json()["code"] == "not_configured"
        assert "Salesforce is not connected" in response.json()["message"]
    service.stop()

    warnings = [
        json.loads(line)["msg"]
        for line in service.logs().splitlines()
        if "is not connected" in line and '"level": "warning"' in line
    ]
    assert len(warnings) == 1 and warnings[0].startswith("Salesforce is not connected: set ")
    assert salesforce.write_calls == 0

    connected = make_service().start()
    wait_until(lambda: salesforce.find_by_email("wait@example.com"))
    delivered = wait_until(
        lambda: connected.api.get("/api/deliveries", params={"status": "done"}).json()["items"]
    )
    assert delivered[0]["id"] == waiting[0]["id"] and delivered[0]["last_error"] is None
