"""Field mappings API (§6 Settings: /api/mappings)."""

from typing import Any

import httpx
import pytest
from support.api import assert_validation_error

RULES = {"two_way", "prefer_salesforce_unless_blank", "always_salesforce", "dont_sync"}
ITEM_KEYS = {"hubspot_property", "lead_field", "contact_field", "rule"}
EMAIL = {
    "hubspot_property": "email",
    "lead_field": "Email",
    "contact_field": "Email",
    "rule": "two_way",
}


async def mappings(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/api/mappings")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items"}
    items: list[dict[str, Any]] = body["items"]
    return items


def mapping(
    name: str, lead: str | None, contact: str | None, rule: str = "two_way"
) -> dict[str, Any]:
    return {"hubspot_property": name, "lead_field": lead, "contact_field": contact, "rule": rule}


async def test_defaults(client: httpx.AsyncClient) -> None:
    items = await mappings(client)
    assert EMAIL in items
    names = [item["hubspot_property"] for item in items]
    assert len(names) == len(set(names))
    assert {"firstname", "lastname", "company", "phone"} <= set(names)
    for item in items:
        assert set(item) == ITEM_KEYS
        assert item["rule"] in RULES
        assert item["lead_field"] is not None or item["contact_field"] is not None
    # Reading again gives the same list.
    assert await mappings(client) == items


async def test_put_replaces_the_list(client: httpx.AsyncClient) -> None:
    new = [
        mapping("lastname", "LastName", "LastName"),
        EMAIL,
        mapping("favourite_colour", "Favourite_Colour__c", None, "always_salesforce"),
        mapping("hs_lead_status", None, "Lead_Status__c", "prefer_salesforce_unless_blank"),
        mapping("phone", "Phone", "Phone", "dont_sync"),
    ]
    response = await client.put("/api/mappings", json={"items": new})
    assert response.status_code == 200, response.text
    assert response.json() == {"items": new}
    assert await mappings(client) == new

    # A second PUT replaces the first one entirely.
    newer = [EMAIL, mapping("firstname", "FirstName", "FirstName")]
    assert (await client.put("/api/mappings", json={"items": newer})).status_code == 200
    assert await mappings(client) == newer


@pytest.mark.parametrize(
    "items",
    [
        [],
        [mapping("firstname", "FirstName", "FirstName")],
        [mapping("firstname", "FirstName", None), mapping("lastname", None, "LastName")],
    ],
)
async def test_put_without_email_keeps_email_mapped(
    client: httpx.AsyncClient, items: list[dict[str, Any]]
) -> None:
    response = await client.put("/api/mappings", json={"items": items})
    assert response.status_code == 200, response.text
    stored = await mappings(client)
    assert response.json()["items"] == stored
    assert EMAIL in stored
    assert [item for item in stored if item != EMAIL] == items


async def test_email_may_use_another_two_way_field_rule(client: httpx.AsyncClient) -> None:
    email = mapping("email", "Email", "Email", "prefer_salesforce_unless_blank")
    assert (await client.put("/api/mappings", json={"items": [email]})).status_code == 200
    assert await mappings(client) == [email]


@pytest.mark.parametrize(
    "items",
    [
        [mapping("firstname", "FirstName", "FirstName", "sometimes")],
        [mapping("firstname", None, None)],
        [mapping("firstname", "FirstName", None), mapping("firstname", None, "FirstName")],
        [mapping("email", "Email", "Email", "dont_sync")],
        [mapping("", "FirstName", None)],
        [mapping("first name", "FirstName", None)],
        [mapping("firstname", "First Name", None)],
        [mapping("firstname", 5, None)],  # type: ignore[arg-type]
        [{"hubspot_property": "firstname", "lead_field": "FirstName", "rule": "two_way"}],
        [mapping("firstname", "FirstName", None) | {"direction": "both"}],
        [{"hubspot_property": "firstname"}],
        ["firstname"],
        None,
    ],
)
async def test_put_refuses_an_invalid_list(client: httpx.AsyncClient, items: Any) -> None:
    before = await mappings(client)
    assert_validation_error(await client.put("/api/mappings", json={"items": items}))
    assert await mappings(client) == before


@pytest.mark.parametrize("body", [{}, [], {"mappings": []}, {"items": [], "extra": 1}])
async def test_put_refuses_a_malformed_body(client: httpx.AsyncClient, body: Any) -> None:
    assert_validation_error(await client.put("/api/mappings", json=body))
