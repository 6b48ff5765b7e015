"""Contacts read API (§6 Contacts)."""

from typing import Any

import httpx
import pytest
from support.api import CONTACT_KEYS, Seed, SeedMany, assert_error, assert_validation_error


async def page(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/contacts", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"items", "next"}
    return body


async def test_empty(client: httpx.AsyncClient) -> None:
    assert await page(client) == {"items": [], "next": None}


async def test_list_with_paging(client: httpx.AsyncClient, seed_many: SeedMany) -> None:
    ids = await seed_many([{"email": f"c{i:02}@example.com"} for i in range(23)])
    assert (await page(client))["items"] == [
        (await client.get(f"/api/contacts/{contact_id}")).json() for contact_id in ids
    ]
    for limit in (1, 5, 10, 23, 50):
        seen: list[int] = []
        after = None
        while True:
            body = await page(client, limit=limit, **({"after": after} if after else {}))
            assert len(body["items"]) <= limit
            seen += [contact["id"] for contact in body["items"]]
            after = body["next"]
            if after is None:
                break
        assert seen == ids, f"limit={limit}"


@pytest.mark.parametrize(
    "params",
    [
        {"after": "bogus"},
        {"after": "aWQ6eA"},  # id:x
        {"after": "aWQ6OTk5OTk5OTk5OTk5OTk5OTk5OQ"},  # id:9999999999999999999
        {"limit": 0},
        {"limit": 1001},
        {"email": "ann\x00@example.com"},
        {"email": "a" * 321},
    ],
)
async def test_list_refuses_bad_paging(client: httpx.AsyncClient, params: dict[str, Any]) -> None:
    response = await client.get("/api/contacts", params=params)
    assert response.status_code == 422, response.text


async def test_bad_cursor_has_a_code(client: httpx.AsyncClient) -> None:
    assert_error(
        await client.get("/api/contacts", params={"after": "bogus"}), 422, "invalid_cursor"
    )


@pytest.mark.parametrize("query", ["ann@example.com", "ANN@Example.COM", " ann@example.com "])
async def test_filter_by_email(client: httpx.AsyncClient, seed: Seed, query: str) -> None:
    ann = await seed("Ann@Example.com", firstname="Ann")
    await seed("annie@example.com")
    await seed("bob@example.com")
    body = await page(client, email=query)
    assert [contact["id"] for contact in body["items"]] == [ann]
    assert body["next"] is None


@pytest.mark.parametrize("query", ["ann", "example.com", "ann@example", "nobody@example.com"])
async def test_email_filter_is_exact(client: httpx.AsyncClient, seed: Seed, query: str) -> None:
    await seed("ann@example.com")
    assert await page(client, email=query) == {"items": [], "next": None}


@pytest.mark.parametrize("query", ["", "  "])
async def test_blank_email_filter_is_no_filter(
    client: httpx.AsyncClient, seed: Seed, query: str
) -> None:
    ids = [await seed("ann@example.com"), await seed(None, firstname="No email")]
    assert [contact["id"] for contact in (await page(client, email=query))["items"]] == ids


async def test_get_contact(client: httpx.AsyncClient, seed: Seed) -> None:
    contact_id = await seed("Dana@Example.com", firstname="Dana", lastname="", city="Lyon")
    response = await client.get(f"/api/contacts/{contact_id}")
    assert response.status_code == 200, response.text
    contact = response.json()
    assert set(contact) == CONTACT_KEYS
    assert contact["id"] == contact_id
    assert contact["email"] == "dana@example.com"
    assert contact["hubspot_id"].startswith("hs-")
    assert contact["salesforce_id"] is None
    assert contact["salesforce_object"] is None
    assert contact["properties"] == {
        "city": "Lyon",
        "email": "Dana@Example.com",
        "firstname": "Dana",
        "lastname": None,
    }


async def test_contact_without_email(client: httpx.AsyncClient, seed: Seed) -> None:
    contact_id = await seed(None, firstname="Anonymous")
    contact = (await client.get(f"/api/contacts/{contact_id}")).json()
    assert contact["email"] is None
    assert contact["properties"] == {"firstname": "Anonymous"}


async def test_unknown_contact(client: httpx.AsyncClient, seed: Seed) -> None:
    await seed("ann@example.com")
    assert_error(await client.get("/api/contacts/999999"), 404, "not_found")


@pytest.mark.parametrize("contact_id", [0, -1])
async def test_impossible_contact_id_is_not_found(
    client: httpx.AsyncClient, contact_id: int
) -> None:
    assert_error(await client.get(f"/api/contacts/{contact_id}"), 404, "not_found")


@pytest.mark.parametrize("contact_id", ["abc", "1.5", str(2**31), str(10**20)])
async def test_malformed_contact_id_is_refused(client: httpx.AsyncClient, contact_id: str) -> None:
    assert_validation_error(await client.get(f"/api/contacts/{contact_id}"))
