"""Segments in the console: review before save, the service layer's validation, static members."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from console.helpers import Console
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.sync import preferences, segments
from syncgate.sync.models import SegmentType

CUSTOMERS = {"property": "lifecyclestage", "operator": "eq", "value": "customer"}
Seed = Callable[..., Any]


async def stored_segments(factory: async_sessionmaker[AsyncSession]) -> list[Any]:
    async with factory() as session:
        return list(await segments.list_segments(session))


def form(name: str, filter_: Any, action: str, **extra: str) -> dict[str, str]:
    text = filter_ if isinstance(filter_, str) else json.dumps(filter_)
    return {"name": name, "type": "active", "filter": text, "action": action, **extra}


async def test_review_shows_size_and_sample_and_stores_nothing(
    console: Console, seed: Seed, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await seed("ada@example.com", lifecyclestage="customer", firstname="Ada")
    await seed("bo@example.com", lifecyclestage="lead")
    response = await console.post("/console/segments/new", form("Customers", CUSTOMERS, "review"))
    assert response.status_code == 200
    assert "Review: 1 contact matches" in response.text
    assert "ada@example.com" in response.text and "bo@example.com" not in response.text
    assert await stored_segments(session_factory) == []
    # The reviewed criteria travel with the form, so Save knows what was reviewed.
    assert 'name="reviewed" value="{&#34;operator&#34;:&#34;eq&#34;' in response.text


async def test_save_after_review_creates_the_segment(
    console: Console, seed: Seed, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await seed("ada@example.com", lifecyclestage="customer")
    review = await console.post("/console/segments/new", form("Customers", CUSTOMERS, "review"))
    reviewed = review.text.split('name="reviewed" value="')[1].split('"')[0]
    reviewed = reviewed.replace("&#34;", '"')
    response = await console.post(
        "/console/segments/new", form("Customers", CUSTOMERS, "save", reviewed=reviewed)
    )
    assert response.status_code == 303 and response.headers["location"] == "/console/segments"
    page = await console.follow(response)
    assert "Saved “Customers”: 1 contact matches." in page.text
    (segment,) = await stored_segments(session_factory)
    assert (segment.name, segment.type, segment.filter, segment.size) == (
        "Customers",
        SegmentType.ACTIVE,
        CUSTOMERS,
        1,
    )
    assert "lifecyclestage eq &#39;customer&#39;" in page.text


async def test_save_of_unreviewed_criteria_shows_the_review_first(
    console: Console, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    response = await console.post(
        "/console/segments/new",
        form("Customers", CUSTOMERS, "save", reviewed=json.dumps({"property": "x"})),
    )
    assert response.status_code == 200
    assert "Review the size and sample of these criteria, then save." in response.text
    assert "Review: 0 contacts match" in response.text
    assert await stored_segments(session_factory) == []


async def test_without_javascript_the_json_textarea_is_the_input(
    console: Console, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    data = {"name": "Customers", "type": "active", "filter": "", "action": "review"}
    data["filter_json"] = json.dumps(CUSTOMERS, indent=2)
    review = await console.post("/console/segments/new", data)
    assert "Review: 0 contacts match" in review.text
    reviewed = review.text.split('name="reviewed" value="')[1].split('"')[0].replace("&#34;", '"')
    saved = await console.post(
        "/console/segments/new", {**data, "action": "save", "reviewed": reviewed}
    )
    assert saved.status_code == 303
    (segment,) = await stored_segments(session_factory)
    assert segment.filter == CUSTOMERS


@pytest.mark.parametrize(
    ("filter_text", "message"),
    [
        ("{not json", "filter: not valid JSON"),
        ('{"property": "x", "operator": "eq", "value": NaN}', "NaN is not a JSON number"),
        (json.dumps({"property": "x", "operator": "between"}), "operator"),
        (json.dumps({"all": "x"}), "filter"),
        ("", "an active segment needs a filter"),
    ],
)
async def test_invalid_criteria_show_the_service_layers_message(
    console: Console, filter_text: str, message: str
) -> None:
    for action in ("review", "save"):
        response = await console.post(
            "/console/segments/new", form("Broken", filter_text, action, reviewed=filter_text)
        )
        assert response.status_code == 422, (action, response.text)
        assert message in response.text, action
        assert 'role="alert"' in response.text


async def test_invalid_filter_message_is_the_apis(console: Console) -> None:
    bad = {"property": "x", "operator": "in", "value": "not a list"}
    api = await console.http.post(
        "/api/segments/preview",
        json={"filter": bad},
        headers={"Authorization": f"Bearer {console.token}"},
    )
    assert api.status_code == 422 and api.json()["code"] == "invalid_filter"
    page = await console.post("/console/segments/new", form("Bad", bad, "review"))
    assert page.status_code == 422
    assert api.json()["message"].replace("'", "&#39;") in page.text


@pytest.mark.parametrize(("name", "message"), [("", "Name: String should have at least 1")])
async def test_names_are_validated_by_the_api_schema(
    console: Console, name: str, message: str
) -> None:
    response = await console.post(
        "/console/segments/new",
        {"name": name, "type": "static", "filter": "", "action": "save"},
    )
    assert response.status_code == 422
    assert message in response.text


async def test_static_segment_is_created_without_criteria_then_edited_by_email(
    console: Console, seed: Seed, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await seed("ada@example.com")
    await seed("bo@example.com")
    response = await console.post(
        "/console/segments/new",
        {"name": "Fair", "type": "static", "filter": json.dumps(CUSTOMERS), "action": "save"},
    )
    assert response.status_code == 303
    (segment,) = await stored_segments(session_factory)
    assert (segment.type, segment.filter) == (SegmentType.STATIC, None)
    location = response.headers["location"]
    assert location == f"/console/segments/{segment.id}"
    page = await console.follow(response)
    assert "Add its members by email below" in page.text

    added = await console.post(
        f"{location}/members",
        {"emails": "ADA@example.com\nbo@example.com, ghost@example.com", "action": "add"},
    )
    page = await console.follow(added)
    assert "Added 2 members" in page.text and "No contact has ghost@example.com" in page.text
    assert "Members (2)" in page.text

    removed = await console.post(
        f"{location}/members", {"emails": "bo@example.com", "action": "remove"}
    )
    page = await console.follow(removed)
    assert "Removed 1 member;" in page.text and "Members (1)" in page.text

    empty = await console.post(f"{location}/members", {"emails": "  ", "action": "add"})
    assert empty.status_code == 422 and "enter at least one email address" in empty.text
    too_long = await console.post(
        f"{location}/members", {"emails": "a" * 400 + "@example.com", "action": "add"}
    )
    assert too_long.status_code == 422 and "at most 320 characters" in too_long.text


async def test_members_of_an_active_segment_cannot_be_edited(
    console: Console, seed: Seed, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await seed("ada@example.com", lifecyclestage="customer")
    async with session_factory() as session, session.begin():
        segment = await segments.create_segment(session, "Customers", SegmentType.ACTIVE, CUSTOMERS)
    response = await console.post(
        f"/console/segments/{segment.id}/members", {"emails": "ada@example.com", "action": "add"}
    )
    assert response.status_code == 422
    assert "its members follow its filter" in response.text


async def test_editing_an_active_segment_reviews_then_recomputes(
    console: Console, seed: Seed, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await seed("ada@example.com", lifecyclestage="customer")
    await seed("bo@example.com", lifecyclestage="lead")
    async with session_factory() as session, session.begin():
        segment = await segments.create_segment(session, "Customers", SegmentType.ACTIVE, CUSTOMERS)
    page = await console.get(f"/console/segments/{segment.id}")
    assert page.status_code == 200 and "Members (1)" in page.text
    assert "ada@example.com" in page.text

    # A rename keeps the reviewed criteria: no review needed, no recomputation.
    reviewed = json.dumps(CUSTOMERS, sort_keys=True, separators=(",", ":"))
    renamed = await console.post(
        f"/console/segments/{segment.id}",
        form("Paying customers", CUSTOMERS, "save", reviewed=reviewed),
    )
    assert renamed.status_code == 303

    leads = {"property": "lifecyclestage", "operator": "in", "value": ["lead", "customer"]}
    review = await console.post(
        f"/console/segments/{segment.id}", form("Everyone", leads, "save", reviewed=reviewed)
    )
    assert review.status_code == 200 and "Review: 2 contacts match" in review.text
    saved = await console.post(
        f"/console/segments/{segment.id}",
        form(
            "Everyone",
            leads,
            "save",
            reviewed=json.dumps(leads, sort_keys=True, separators=(",", ":")),
        ),
    )
    assert saved.status_code == 303
    (stored,) = await stored_segments(session_factory)
    assert (stored.name, stored.filter, stored.size) == ("Everyone", leads, 2)


async def test_a_failed_edit_changes_nothing(
    console: Console, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with session_factory() as session, session.begin():
        segment = await segments.create_segment(session, "Customers", SegmentType.ACTIVE, CUSTOMERS)
    bad = {"property": "x", "operator": "gt", "value": "soon"}
    canonical = json.dumps(bad, sort_keys=True, separators=(",", ":"))
    response = await console.post(
        f"/console/segments/{segment.id}", form("Renamed", bad, "save", reviewed=canonical)
    )
    assert response.status_code == 422
    (stored,) = await stored_segments(session_factory)
    assert (stored.name, stored.filter) == ("Customers", CUSTOMERS)


async def test_create_can_make_it_the_inclusion_segment(
    console: Console, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    page = await console.get("/console/segments/new?for=inclusion")
    assert "Create inclusion segment" in page.text
    assert 'name="make_inclusion" checked' in page.text
    canonical = json.dumps(CUSTOMERS, sort_keys=True, separators=(",", ":"))
    response = await console.post(
        "/console/segments/new",
        form("Customers", CUSTOMERS, "save", reviewed=canonical, make_inclusion="on"),
    )
    assert response.headers["location"] == "/console"
    home = await console.follow(response)
    assert "made it the inclusion segment" in home.text
    assert "Nothing is synced by this change itself" in home.text
    async with session_factory() as session:
        settings = await preferences.load_settings(session)
        (segment,) = await segments.list_segments(session)
        assert settings.inclusion_segment_id == segment.id


async def test_delete_refuses_the_inclusion_segment_with_the_services_message(
    console: Console, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with session_factory() as session, session.begin():
        segment = await segments.create_segment(session, "Customers", SegmentType.ACTIVE, CUSTOMERS)
        await preferences.set_inclusion_segment(session, segment.id)
    response = await console.post(f"/console/segments/{segment.id}/delete")
    page = await console.follow(response)
    assert "is the inclusion segment; clear or change it first" in page.text
    assert len(await stored_segments(session_factory)) == 1

    await console.post("/console/inclusion-segment", {"segment_id": ""})
    response = await console.post(f"/console/segments/{segment.id}/delete")
    assert response.headers["location"] == "/console/segments"
    assert await stored_segments(session_factory) == []


async def test_segment_list_shows_type_size_and_status(
    console: Console, seed: Seed, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await seed("ada@example.com", lifecyclestage="customer")
    async with session_factory() as session, session.begin():
        await segments.create_segment(session, "Customers", SegmentType.ACTIVE, CUSTOMERS)
        await segments.create_segment(session, "Fair", SegmentType.STATIC, None)
    page = await console.get("/console/segments")
    assert page.status_code == 200
    for text in ("Customers", "Fair", "Active", "Static", "✓</span> Ready"):
        assert text in page.text


async def test_unknown_segments_are_a_page_not_json(console: Console) -> None:
    for path in ("/console/segments/999", "/console/segments/abc"):
        response = await console.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
    response = await console.post("/console/segments/999/delete")
    assert response.status_code == 404 and "segment 999 does not exist" in response.text
