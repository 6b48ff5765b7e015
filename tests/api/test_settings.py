"""Settings API (§6 Settings): the settings object and the inclusion segment."""

from typing import Any

import httpx
import pytest
from support.api import assert_error, assert_validation_error

DEFAULTS = {
    "inclusion_segment_id": None,
    "create_hubspot_contacts_from": {"leads": True, "contacts": True},
    "new_hubspot_contacts_as": "Lead",
}


async def active_segment(client: httpx.AsyncClient, name: str = "Gate") -> int:
    response = await client.post(
        "/api/segments",
        json={
            "name": name,
            "type": "active",
            "filter": {"property": "email", "operator": "is_known"},
        },
    )
    assert response.status_code == 201, response.text
    segment_id: int = response.json()["id"]
    return segment_id


async def static_segment(client: httpx.AsyncClient) -> int:
    response = await client.post("/api/segments", json={"name": "Hand-picked", "type": "static"})
    assert response.status_code == 201, response.text
    segment_id: int = response.json()["id"]
    return segment_id


async def current(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/settings")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def patch(client: httpx.AsyncClient, body: Any) -> dict[str, Any]:
    response = await client.patch("/api/settings", json=body)
    assert response.status_code == 200, response.text
    settings: dict[str, Any] = response.json()
    assert settings == await current(client)
    return settings


# --- GET / PATCH /api/settings -------------------------------------------------------------


async def test_defaults(client: httpx.AsyncClient) -> None:
    assert await current(client) == DEFAULTS
    # Reading twice creates nothing new and changes nothing.
    assert await current(client) == DEFAULTS


async def test_patch_merges_nested_objects(client: httpx.AsyncClient) -> None:
    settings = await patch(client, {"create_hubspot_contacts_from": {"leads": False}})
    assert settings["create_hubspot_contacts_from"] == {"leads": False, "contacts": True}

    settings = await patch(client, {"create_hubspot_contacts_from": {"contacts": False}})
    assert settings["create_hubspot_contacts_from"] == {"leads": False, "contacts": False}

    settings = await patch(client, {"new_hubspot_contacts_as": "Contact"})
    assert settings == DEFAULTS | {
        "create_hubspot_contacts_from": {"leads": False, "contacts": False},
        "new_hubspot_contacts_as": "Contact",
    }

    settings = await patch(
        client,
        {
            "create_hubspot_contacts_from": {"leads": True, "contacts": True},
            "new_hubspot_contacts_as": "Lead",
        },
    )
    assert settings == DEFAULTS


@pytest.mark.parametrize("body", [{}, {"create_hubspot_contacts_from": {}}])
async def test_empty_patch_changes_nothing(client: httpx.AsyncClient, body: Any) -> None:
    await patch(client, {"new_hubspot_contacts_as": "Contact"})
    assert await patch(client, body) == DEFAULTS | {"new_hubspot_contacts_as": "Contact"}


async def test_patch_inclusion_segment(client: httpx.AsyncClient) -> None:
    segment_id = await active_segment(client)
    settings = await patch(client, {"inclusion_segment_id": segment_id})
    assert settings == DEFAULTS | {"inclusion_segment_id": segment_id}
    assert (await client.get("/api/settings/inclusion-segment")).json() == {
        "segment_id": segment_id
    }

    # Other keys leave it alone; null clears it.
    settings = await patch(client, {"new_hubspot_contacts_as": "Contact"})
    assert settings["inclusion_segment_id"] == segment_id
    settings = await patch(client, {"inclusion_segment_id": None})
    assert settings["inclusion_segment_id"] is None
    assert (await client.get("/api/settings/inclusion-segment")).json() == {"segment_id": None}


async def test_patch_inclusion_segment_to_a_static_segment(client: httpx.AsyncClient) -> None:
    segment_id = await static_segment(client)
    response = await client.patch(
        "/api/settings",
        json={"inclusion_segment_id": segment_id, "new_hubspot_contacts_as": "Contact"},
    )
    assert_error(response, 422, "segment_not_active")
    # The whole patch was refused.
    assert await current(client) == DEFAULTS


async def test_patch_inclusion_segment_to_an_unknown_segment(client: httpx.AsyncClient) -> None:
    response = await client.patch(
        "/api/settings",
        json={"create_hubspot_contacts_from": {"leads": False}, "inclusion_segment_id": 999_999},
    )
    assert_error(response, 404, "not_found")
    assert await current(client) == DEFAULTS


@pytest.mark.parametrize(
    "body",
    [
        {"new_hubspot_contacts_as": "Account"},
        {"new_hubspot_contacts_as": "lead"},
        {"new_hubspot_contacts_as": None},
        {"create_hubspot_contacts_from": None},
        {"create_hubspot_contacts_from": True},
        {"create_hubspot_contacts_from": {"leads": None}},
        {"create_hubspot_contacts_from": {"leads": "maybe"}},
        {"create_hubspot_contacts_from": {"leads": "no"}},
        {"create_hubspot_contacts_from": {"contacts": 0}},
        {"inclusion_segment_id": "first"},
        {"inclusion_segment_id": [1]},
        {"inclusion_segment_id": 2**31},
        {"unknown": 1},
        {"inclusion_segment": None},
        {"create_hubspot_contacts_from": {"accounts": True}},
        ["new_hubspot_contacts_as", "Contact"],
    ],
)
async def test_patch_refuses_invalid_values_and_unknown_keys(
    client: httpx.AsyncClient, body: Any
) -> None:
    assert_validation_error(await client.patch("/api/settings", json=body))
    assert await current(client) == DEFAULTS


# --- /api/settings/inclusion-segment -------------------------------------------------------


async def test_inclusion_segment_lifecycle(client: httpx.AsyncClient) -> None:
    url = "/api/settings/inclusion-segment"
    response = await client.get(url)
    assert response.status_code == 200
    assert response.json() == {"segment_id": None}

    first = await active_segment(client, "First")
    response = await client.put(url, json={"segment_id": first})
    assert response.status_code == 200, response.text
    assert response.json() == {"segment_id": first}
    assert (await client.get(url)).json() == {"segment_id": first}
    assert (await current(client))["inclusion_segment_id"] == first

    # Changing it to another active segment.
    second = await active_segment(client, "Second")
    response = await client.put(url, json={"segment_id": second})
    assert response.status_code == 200
    assert response.json() == {"segment_id": second}

    response = await client.delete(url)
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(url)).json() == {"segment_id": None}
    assert await current(client) == DEFAULTS

    # Clearing twice is fine.
    assert (await client.delete(url)).status_code == 204


async def test_inclusion_segment_must_be_active(client: httpx.AsyncClient) -> None:
    active = await active_segment(client)
    url = "/api/settings/inclusion-segment"
    assert (await client.put(url, json={"segment_id": active})).status_code == 200
    static = await static_segment(client)
    assert_error(await client.put(url, json={"segment_id": static}), 422, "segment_not_active")
    # The previous choice stays.
    assert (await client.get(url)).json() == {"segment_id": active}


async def test_inclusion_segment_must_exist(client: httpx.AsyncClient) -> None:
    url = "/api/settings/inclusion-segment"
    assert_error(await client.put(url, json={"segment_id": 999_999}), 404, "not_found")
    assert (await client.get(url)).json() == {"segment_id": None}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"segment_id": "abc"},
        {"segment_id": 2**31},
        {"segment": 1},
        {"segment_id": 1, "extra": True},
        [1],
    ],
)
async def test_inclusion_segment_refuses_a_malformed_body(
    client: httpx.AsyncClient, body: Any
) -> None:
    assert_validation_error(await client.put("/api/settings/inclusion-segment", json=body))
