"""Segments API (§6 Segments): active and static segments, preview, members."""

import json
from datetime import datetime
from typing import Any

import httpx
import pytest
from support.api import (
    CONTACT_KEYS,
    SEGMENT_KEYS,
    CountRows,
    Seed,
    SeedMany,
    assert_error,
    assert_validation_error,
)

from syncgate.sync.models import Segment, SegmentMember

# Keys deliberately out of the usual order: the filter must come back exactly as sent.
FRENCH_AND_SENIOR_OR_VIP: dict[str, Any] = {
    "all": [
        {"value": "France", "operator": "eq", "property": "country"},
        {
            "any": [
                {"operator": "gte", "property": "age", "value": 30},
                {"not": {"property": "vip", "operator": "is_unknown"}},
            ]
        },
    ]
}


async def seed_people(seed: Seed) -> dict[str, int]:
    """Contacts for FRENCH_AND_SENIOR_OR_VIP: a, b and f match it."""
    return {
        "a": await seed("a@example.com", country="France", age="35"),
        "b": await seed("b@example.com", country="france", age="20", vip="yes"),
        "c": await seed("c@example.com", country="France", age="20"),
        "d": await seed("d@example.com", country="Germany", age="40"),
        "e": await seed("e@example.com", age="50", vip="yes"),
        "f": await seed("f@example.com", country="FRANCE", age="31"),
    }


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/segments", json=body)
    assert response.status_code == 201, response.text
    segment: dict[str, Any] = response.json()
    return segment


async def member_ids(client: httpx.AsyncClient, segment_id: int) -> list[int]:
    response = await client.get(f"/api/segments/{segment_id}/members", params={"limit": 1000})
    assert response.status_code == 200, response.text
    assert response.json()["next"] is None
    return [contact["id"] for contact in response.json()["items"]]


def check_segment_shape(segment: dict[str, Any]) -> None:
    assert set(segment) == SEGMENT_KEYS
    assert isinstance(segment["id"], int)
    assert segment["type"] in ("active", "static")
    assert segment["status"] in ("processing", "ready")
    created = datetime.fromisoformat(segment["created_at"])
    updated = datetime.fromisoformat(segment["updated_at"])
    assert created.tzinfo is not None and updated.tzinfo is not None
    assert updated >= created


# --- create ------------------------------------------------------------------------------


async def test_create_active_segment(client: httpx.AsyncClient, seed: Seed) -> None:
    people = await seed_people(seed)
    # Sent as raw text with odd whitespace: only the JSON structure matters.
    raw = (
        '{ "name" : "French seniors",\n  "type":"active",\n'
        f'  "filter" :\n{json.dumps(FRENCH_AND_SENIOR_OR_VIP, indent=7)} }}'
    )
    response = await client.post(
        "/api/segments", content=raw.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text
    segment = response.json()
    check_segment_shape(segment)
    assert segment["name"] == "French seniors"
    assert segment["type"] == "active"
    assert segment["status"] == "ready"
    assert segment["size"] == 3
    assert segment["filter"] == FRENCH_AND_SENIOR_OR_VIP
    # Same structure and the same key order, at every level.
    assert json.dumps(segment["filter"]) == json.dumps(FRENCH_AND_SENIOR_OR_VIP)
    assert await member_ids(client, segment["id"]) == [people["a"], people["b"], people["f"]]

    # And it reads back the same way.
    again = (await client.get(f"/api/segments/{segment['id']}")).json()
    assert again == segment
    assert json.dumps(again["filter"]) == json.dumps(FRENCH_AND_SENIOR_OR_VIP)


async def test_create_active_segment_over_no_contacts(client: httpx.AsyncClient) -> None:
    segment = await create(
        client,
        name="Empty",
        type="active",
        filter={"all": [{"property": "x", "operator": "is_known"}]},
    )
    assert segment["size"] == 0
    assert segment["status"] == "ready"


@pytest.mark.parametrize("body", [{}, {"filter": None}])
async def test_create_static_segment(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    segment = await create(client, name="Hand-picked", type="static", **body)
    check_segment_shape(segment)
    assert segment["type"] == "static"
    assert segment["filter"] is None
    assert segment["size"] == 0
    assert segment["status"] == "ready"


@pytest.mark.parametrize("body", [{}, {"filter": None}])
async def test_active_segment_needs_a_filter(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await client.post("/api/segments", json={"name": "x", "type": "active", **body})
    assert_error(response, 422, "invalid_filter")
    assert (await client.get("/api/segments")).json() == {"items": []}


async def test_static_segment_refuses_a_filter(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/segments",
        json={"name": "x", "type": "static", "filter": FRENCH_AND_SENIOR_OR_VIP},
    )
    assert_error(response, 422, "invalid_filter")
    assert (await client.get("/api/segments")).json() == {"items": []}


INVALID_FILTERS: dict[str, Any] = {
    "unknown operator": {"property": "country", "operator": "like", "value": "x"},
    "in without a list": {"property": "country", "operator": "in", "value": "France"},
    "in with an empty list": {"property": "country", "operator": "in", "value": []},
    "unknown key in a condition": {
        "property": "country",
        "operator": "eq",
        "value": "x",
        "case": "sensitive",
    },
    "unknown group": {"every": [{"property": "country", "operator": "is_known"}]},
    "two groups in one object": {"all": [], "any": []},
    "missing value": {"property": "country", "operator": "eq"},
    "value on is_known": {"property": "country", "operator": "is_known", "value": True},
    "missing property": {"operator": "eq", "value": "x"},
    "missing operator": {"property": "country", "value": "x"},
    "gt on text": {"property": "age", "operator": "gt", "value": "old"},
    "contains a number": {"property": "age", "operator": "contains", "value": 3},
    "not an object": ["country", "eq", "France"],
    "empty object": {},
    "all not a list": {"all": {"property": "country", "operator": "is_known"}},
    "nested error": {"all": [{"not": {"property": "country", "operator": "nope"}}]},
    # PostgreSQL text cannot hold NUL: such a filter could match nothing and break the query.
    "NUL in a value": {"property": "country", "operator": "eq", "value": "Fr\x00ance"},
    "NUL in a list": {"property": "country", "operator": "in", "value": ["a", "\x00"]},
    "NUL in a property": {"property": "coun\x00try", "operator": "is_known"},
}


@pytest.mark.parametrize("bad", INVALID_FILTERS.values(), ids=INVALID_FILTERS)
async def test_create_refuses_an_invalid_filter(client: httpx.AsyncClient, bad: Any) -> None:
    response = await client.post(
        "/api/segments", json={"name": "x", "type": "active", "filter": bad}
    )
    assert_error(response, 422, "invalid_filter")
    assert (await client.get("/api/segments")).json() == {"items": []}


@pytest.mark.parametrize(
    "body",
    [
        {"type": "active", "filter": {"property": "x", "operator": "is_known"}},
        {"name": "", "type": "static"},
        {"name": "a\x00b", "type": "static"},
        {"name": "x" * 256, "type": "static"},
        {"name": 42, "type": "static"},
        {"name": "x"},
        {"name": "x", "type": "dynamic"},
        {"name": "x", "type": None},
        ["name", "x"],
    ],
)
async def test_create_refuses_a_malformed_body(client: httpx.AsyncClient, body: Any) -> None:
    assert_validation_error(await client.post("/api/segments", json=body))


# --- read --------------------------------------------------------------------------------


async def test_list_and_get(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/segments")).json() == {"items": []}
    static = await create(client, name="S", type="static")
    active = await create(
        client, name="A", type="active", filter={"property": "email", "operator": "is_known"}
    )
    response = await client.get("/api/segments")
    assert response.status_code == 200
    assert response.json() == {"items": [static, active]}
    for segment in (static, active):
        response = await client.get(f"/api/segments/{segment['id']}")
        assert response.status_code == 200
        assert response.json() == segment


ROUTE_BODIES: list[tuple[str, str, Any]] = [
    ("GET", "/api/segments/{id}", None),
    ("PATCH", "/api/segments/{id}", {"name": "renamed"}),
    ("DELETE", "/api/segments/{id}", None),
    ("GET", "/api/segments/{id}/members", None),
    ("POST", "/api/segments/{id}/members", {"emails": ["a@example.com"]}),
    ("DELETE", "/api/segments/{id}/members", {"contact_ids": [1]}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTE_BODIES)
async def test_unknown_segment_is_not_found(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    await create(client, name="S", type="static")
    response = await client.request(method, path.format(id=999_999), json=body)
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("segment_id", [0, -1])
@pytest.mark.parametrize(("method", "path", "body"), ROUTE_BODIES)
async def test_impossible_segment_id_is_not_found(
    client: httpx.AsyncClient, method: str, path: str, body: Any, segment_id: int
) -> None:
    response = await client.request(method, path.format(id=segment_id), json=body)
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("segment_id", [2**31, 10**20, -(2**31) - 1])
@pytest.mark.parametrize(("method", "path", "body"), ROUTE_BODIES)
async def test_out_of_range_segment_id_is_refused(
    client: httpx.AsyncClient, method: str, path: str, body: Any, segment_id: int
) -> None:
    # Larger than any id column: refused by validation, not a driver error (500).
    response = await client.request(method, path.format(id=segment_id), json=body)
    assert_validation_error(response)


async def test_every_segment_id_route_is_checked_for_404(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    routes = {
        (method.upper(), path.replace("{segment_id}", "{id}"))
        for path, operations in paths.items()
        if path.startswith("/api/segments/{segment_id}")
        for method in operations
    }
    # A new segment route (resync, …) belongs in ROUTE_BODIES or in its own 404 test.
    known = {(method, path) for method, path, _ in ROUTE_BODIES}
    assert routes - known <= {("POST", "/api/segments/{id}/resync")}


# --- update ------------------------------------------------------------------------------


async def test_patch_name_only(client: httpx.AsyncClient, seed: Seed) -> None:
    await seed_people(seed)
    segment = await create(client, name="Old", type="active", filter=FRENCH_AND_SENIOR_OR_VIP)
    response = await client.patch(f"/api/segments/{segment['id']}", json={"name": "New"})
    assert response.status_code == 200, response.text
    patched = response.json()
    check_segment_shape(patched)
    assert patched["name"] == "New"
    assert json.dumps(patched["filter"]) == json.dumps(FRENCH_AND_SENIOR_OR_VIP)
    assert patched["size"] == 3
    assert patched["status"] == "ready"
    assert patched["created_at"] == segment["created_at"]
    assert (await client.get(f"/api/segments/{segment['id']}")).json() == patched


async def test_patch_filter_recomputes_membership(client: httpx.AsyncClient, seed: Seed) -> None:
    people = await seed_people(seed)
    segment = await create(client, name="French", type="active", filter=FRENCH_AND_SENIOR_OR_VIP)
    new_filter = {
        "any": [
            {"property": "country", "operator": "in", "value": ["germany", "x"]},
            {"property": "country", "operator": "is_unknown"},
        ]
    }
    response = await client.patch(f"/api/segments/{segment['id']}", json={"filter": new_filter})
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["name"] == "French"
    assert json.dumps(patched["filter"]) == json.dumps(new_filter)
    assert patched["size"] == 2
    assert patched["status"] == "ready"
    assert await member_ids(client, segment["id"]) == [people["d"], people["e"]]
    assert (await client.get(f"/api/segments/{segment['id']}")).json()["size"] == 2


async def test_patch_name_and_filter(client: httpx.AsyncClient, seed: Seed) -> None:
    await seed_people(seed)
    segment = await create(client, name="French", type="active", filter=FRENCH_AND_SENIOR_OR_VIP)
    everyone = {"property": "email", "operator": "ends_with", "value": "@EXAMPLE.com"}
    response = await client.patch(
        f"/api/segments/{segment['id']}", json={"name": "Everyone", "filter": everyone}
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Everyone"
    assert response.json()["size"] == 6


async def test_patch_filter_of_a_static_segment_is_refused(client: httpx.AsyncClient) -> None:
    segment = await create(client, name="S", type="static")
    response = await client.patch(
        f"/api/segments/{segment['id']}", json={"filter": FRENCH_AND_SENIOR_OR_VIP}
    )
    assert_error(response, 422, "invalid_filter")
    assert (await client.get(f"/api/segments/{segment['id']}")).json() == segment


async def test_patch_with_an_invalid_filter_changes_nothing(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    await seed_people(seed)
    segment = await create(client, name="French", type="active", filter=FRENCH_AND_SENIOR_OR_VIP)
    for bad in ({"property": "country", "operator": "like", "value": "x"}, None):
        response = await client.patch(
            f"/api/segments/{segment['id']}", json={"name": "Renamed", "filter": bad}
        )
        assert_error(response, 422, "invalid_filter")
    # The whole request was refused, the valid name change included.
    assert (await client.get(f"/api/segments/{segment['id']}")).json() == segment


@pytest.mark.parametrize(
    "body", [{"name": None}, {"name": ""}, {"type": "static"}, {"size": 3}, {"name": 5}]
)
async def test_patch_refuses_a_malformed_body(client: httpx.AsyncClient, body: Any) -> None:
    segment = await create(client, name="S", type="static")
    assert_validation_error(await client.patch(f"/api/segments/{segment['id']}", json=body))


# --- delete ------------------------------------------------------------------------------


async def test_delete(client: httpx.AsyncClient, seed: Seed, count_rows: CountRows) -> None:
    await seed_people(seed)
    segment = await create(client, name="French", type="active", filter=FRENCH_AND_SENIOR_OR_VIP)
    other = await create(client, name="Other", type="active", filter=FRENCH_AND_SENIOR_OR_VIP)
    response = await client.delete(f"/api/segments/{segment['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert_error(await client.get(f"/api/segments/{segment['id']}"), 404, "not_found")
    assert_error(await client.delete(f"/api/segments/{segment['id']}"), 404, "not_found")
    assert (await client.get("/api/segments")).json() == {"items": [other]}
    # Its memberships went with it; the other segment's stayed.
    assert await count_rows(SegmentMember) == 3


async def test_delete_the_inclusion_segment_is_refused(client: httpx.AsyncClient) -> None:
    segment = await create(
        client, name="Gate", type="active", filter={"property": "email", "operator": "is_known"}
    )
    response = await client.put(
        "/api/settings/inclusion-segment", json={"segment_id": segment["id"]}
    )
    assert response.status_code == 200
    assert_error(await client.delete(f"/api/segments/{segment['id']}"), 409, "segment_in_use")
    assert (await client.get(f"/api/segments/{segment['id']}")).json() == segment
    # Once it is no longer the inclusion segment it can go.
    assert (await client.delete("/api/settings/inclusion-segment")).status_code == 204
    assert (await client.delete(f"/api/segments/{segment['id']}")).status_code == 204


# --- preview -----------------------------------------------------------------------------


async def test_preview(
    client: httpx.AsyncClient, seed_many: SeedMany, count_rows: CountRows
) -> None:
    ids = await seed_many(
        [
            {"email": f"p{i:02}@example.com", "country": "France" if i % 2 else "Spain"}
            for i in range(30)
        ]
    )
    response = await client.post(
        "/api/segments/preview",
        json={"filter": {"property": "country", "operator": "eq", "value": "FRANCE"}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"size", "sample"}
    assert body["size"] == 15
    assert len(body["sample"]) == 10
    french = {contact_id for i, contact_id in enumerate(ids) if i % 2}
    for contact in body["sample"]:
        assert set(contact) == CONTACT_KEYS
        assert contact["id"] in french
        assert contact["properties"]["country"] == "France"
    assert len({contact["id"] for contact in body["sample"]}) == 10
    # Stores nothing.
    assert await count_rows(Segment) == 0
    assert await count_rows(SegmentMember) == 0
    assert (await client.get("/api/segments")).json() == {"items": []}


async def test_preview_of_a_small_result(client: httpx.AsyncClient, seed: Seed) -> None:
    people = await seed_people(seed)
    response = await client.post("/api/segments/preview", json={"filter": FRENCH_AND_SENIOR_OR_VIP})
    assert response.status_code == 200, response.text
    assert response.json()["size"] == 3
    assert [c["id"] for c in response.json()["sample"]] == [people["a"], people["b"], people["f"]]


@pytest.mark.parametrize("bad", [INVALID_FILTERS["unknown operator"], None, "country = France"])
async def test_preview_refuses_an_invalid_filter(client: httpx.AsyncClient, bad: Any) -> None:
    assert_error(
        await client.post("/api/segments/preview", json={"filter": bad}), 422, "invalid_filter"
    )


async def test_preview_needs_a_filter(client: httpx.AsyncClient) -> None:
    assert_validation_error(await client.post("/api/segments/preview", json={}))


# --- members -----------------------------------------------------------------------------


async def test_members_paging(client: httpx.AsyncClient, seed_many: SeedMany) -> None:
    ids = await seed_many(
        [{"email": f"m{i:02}@example.com", "country": "France"} for i in range(25)]
        + [{"email": f"x{i}@example.com", "country": "Spain"} for i in range(5)]
    )
    members = ids[:25]
    segment = await create(
        client,
        name="French",
        type="active",
        filter={"property": "country", "operator": "eq", "value": "france"},
    )
    assert segment["size"] == 25
    for limit, pages in ((10, [10, 10, 5]), (5, [5, 5, 5, 5, 5]), (25, [25]), (100, [25])):
        seen: list[int] = []
        sizes: list[int] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": limit} | ({"after": after} if after else {})
            response = await client.get(f"/api/segments/{segment['id']}/members", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            assert set(page) == {"items", "next"}
            assert all(set(contact) == CONTACT_KEYS for contact in page["items"])
            seen += [contact["id"] for contact in page["items"]]
            sizes.append(len(page["items"]))
            after = page["next"]
            if after is None:
                break
            assert isinstance(after, str)
        assert seen == members, f"limit={limit}"
        assert sizes == pages, f"limit={limit}"


async def test_members_default_page(client: httpx.AsyncClient, seed: Seed) -> None:
    people = await seed_people(seed)
    segment = await create(client, name="F", type="active", filter=FRENCH_AND_SENIOR_OR_VIP)
    response = await client.get(f"/api/segments/{segment['id']}/members")
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["items"]] == [people["a"], people["b"], people["f"]]
    assert response.json()["next"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"after": "not-a-cursor"},
        {"after": "%%%"},
        {"after": "aWQ6eA"},
        {"limit": 0},
        {"limit": 1001},
        {"limit": "ten"},
        {"after": "aWQ6OTk5OTk5OTk5OTk5OTk5OTk5OQ"},  # id:9999999999999999999
    ],
)
async def test_members_refuses_bad_paging(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    segment = await create(client, name="S", type="static")
    response = await client.get(f"/api/segments/{segment['id']}/members", params=params)
    assert response.status_code == 422, response.text


async def test_static_members_by_email(client: httpx.AsyncClient, seed: Seed) -> None:
    alice = await seed("alice@example.com")
    bob = await seed("Bob@Example.com")
    await seed("carol@example.com")
    segment = await create(client, name="S", type="static")
    url = f"/api/segments/{segment['id']}/members"

    response = await client.post(
        url, json={"emails": ["ALICE@example.com", "bob@example.COM", "nobody@example.com"]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["size"] == 2
    assert body["not_found"] == ["nobody@example.com"]
    assert await member_ids(client, segment["id"]) == [alice, bob]
    assert (await client.get(f"/api/segments/{segment['id']}")).json()["size"] == 2

    # Adding again changes nothing.
    response = await client.post(url, json={"emails": ["alice@example.com"]})
    assert response.status_code == 200
    assert response.json()["size"] == 2
    assert response.json()["not_found"] == []
    assert await member_ids(client, segment["id"]) == [alice, bob]

    response = await client.request(
        "DELETE", url, json={"emails": ["Alice@Example.Com", "ghost@example.com"]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["size"] == 1
    assert response.json()["not_found"] == ["ghost@example.com"]
    assert await member_ids(client, segment["id"]) == [bob]
    assert (await client.get(f"/api/segments/{segment['id']}")).json()["size"] == 1


async def test_static_members_by_contact_id(client: httpx.AsyncClient, seed: Seed) -> None:
    alice = await seed("alice@example.com")
    bob = await seed("bob@example.com")
    nameless = await seed(None, firstname="No email")
    segment = await create(client, name="S", type="static")
    url = f"/api/segments/{segment['id']}/members"

    response = await client.post(url, json={"contact_ids": [nameless, alice, 999_999]})
    assert response.status_code == 200, response.text
    assert response.json()["size"] == 2
    assert response.json()["not_found"] == [999_999]
    assert await member_ids(client, segment["id"]) == [alice, nameless]

    response = await client.post(url, json={"contact_ids": [alice, bob]})
    assert response.json()["size"] == 3

    response = await client.request("DELETE", url, json={"contact_ids": [alice, bob, 999_999]})
    assert response.status_code == 200, response.text
    assert response.json()["size"] == 1
    assert response.json()["not_found"] == [999_999]
    assert await member_ids(client, segment["id"]) == [nameless]

    # Removing what is not there is fine too.
    response = await client.request("DELETE", url, json={"contact_ids": [alice]})
    assert response.status_code == 200
    assert response.json()["size"] == 1


async def test_members_of_an_active_segment_cannot_be_changed(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    people = await seed_people(seed)
    segment = await create(client, name="F", type="active", filter=FRENCH_AND_SENIOR_OR_VIP)
    url = f"/api/segments/{segment['id']}/members"
    for method in ("POST", "DELETE"):
        for body in ({"emails": ["c@example.com"]}, {"contact_ids": [people["a"]]}):
            response = await client.request(method, url, json=body)
            assert_error(response, 409, "segment_not_static")
    assert await member_ids(client, segment["id"]) == [people["a"], people["b"], people["f"]]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"emails": ["a@example.com"], "contact_ids": [1]},
        {"emails": None, "contact_ids": None},
        {"emails": "a@example.com"},
        {"contact_ids": ["one"]},
        {"ids": [1]},
        {"emails": ["a\x00@example.com"]},
        {"emails": ["a" * 321]},
        {"contact_ids": [2**31]},
    ],
)
@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_members_body_needs_exactly_one_list(
    client: httpx.AsyncClient, method: str, body: Any
) -> None:
    segment = await create(client, name="S", type="static")
    response = await client.request(method, f"/api/segments/{segment['id']}/members", json=body)
    assert_validation_error(response)
