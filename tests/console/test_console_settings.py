"""Mappings and settings forms: the admin API's schemas validate them, messages name the field."""

from typing import Any

import pytest
from console.helpers import Console
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.sync import preferences
from syncgate.sync.mapping import DEFAULT_MAPPINGS, load_mappings


def mapping_form(rows: list[tuple[str, str, str, str]], **extra: str) -> dict[str, Any]:
    data: dict[str, Any] = {"rows": str(len(rows)), **extra}
    for i, (hubspot, lead, contact, rule) in enumerate(rows):
        data |= {
            f"m{i}_hubspot_property": hubspot,
            f"m{i}_lead_field": lead,
            f"m{i}_contact_field": contact,
            f"m{i}_rule": rule,
        }
    return data


async def test_settings_page_shows_the_stored_settings_and_mappings(console: Console) -> None:
    page = await console.get("/console/settings")
    assert page.status_code == 200
    assert 'name="create_from_leads" checked' in page.text
    assert 'name="new_contacts_as" value="Lead" checked' in page.text
    for mapping in DEFAULT_MAPPINGS:
        assert f'value="{mapping.hubspot_property}"' in page.text
    assert f'name="rows" value="{len(DEFAULT_MAPPINGS) + 3}"' in page.text


async def test_settings_are_saved(
    console: Console, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    response = await console.post(
        "/console/settings", {"create_from_contacts": "on", "new_contacts_as": "Contact"}
    )
    assert response.status_code == 303
    assert "Settings saved." in (await console.follow(response)).text
    async with session_factory() as session:
        row = await preferences.load_settings(session)
        assert (row.create_from_leads, row.create_from_contacts, row.new_contacts_as) == (
            False,
            True,
            "Contact",
        )


async def test_invalid_settings_show_the_schemas_message(
    console: Console, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    response = await console.post("/console/settings", {"new_contacts_as": "Account"})
    assert response.status_code == 422
    assert "The settings were not saved" in response.text
    assert "Create new Salesforce records as: choose &#39;Lead&#39; or &#39;Contact&#39;" in (
        response.text
    )
    async with session_factory() as session:
        assert (await preferences.load_settings(session)).new_contacts_as == "Lead"


async def test_mappings_are_replaced_and_blank_or_removed_rows_dropped(
    console: Console, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    data = mapping_form(
        [
            ("email", "Email", "Email", "two_way"),
            ("firstname", "FirstName", "", "prefer_salesforce_unless_blank"),
            ("lastname", "LastName", "LastName", "two_way"),
            ("", "", "", "two_way"),
        ],
        m2_remove="on",
    )
    response = await console.post("/console/mappings", data)
    assert response.status_code == 303
    assert "Saved 2 field mappings" in (await console.follow(response)).text
    async with session_factory() as session:
        stored = await load_mappings(session)
    assert [(m.hubspot_property, m.lead_field, m.contact_field, m.rule) for m in stored] == [
        ("email", "Email", "Email", "two_way"),
        ("firstname", "FirstName", None, "prefer_salesforce_unless_blank"),
    ]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [("email", "Email", "Email", "two_way"), ("1st", "First__c", "", "two_way")],
            "Row 2 HubSpot property: use letters, digits and underscores",
        ),
        (
            [("email", "Email", "Email", "two_way"), ("color", "", "", "two_way")],
            "Row 2: a mapping needs a lead_field, a contact_field or both",
        ),
        (
            [("email", "Email", "Email", "dont_sync")],
            "Row 1: email is always mapped: it is how records are matched",
        ),
        (
            [("city", "City", "", "two_way"), ("city", "", "MailingCity", "two_way")],
            "each HubSpot property may be mapped once: city",
        ),
        (
            [("city", "City", "", "sometimes")],
            "Row 1 sync rule: Input should be",
        ),
    ],
)
async def test_invalid_mappings_show_which_row_is_wrong(
    console: Console,
    session_factory: async_sessionmaker[AsyncSession],
    rows: list[tuple[str, str, str, str]],
    message: str,
) -> None:
    response = await console.post("/console/mappings", mapping_form(rows))
    assert response.status_code == 422
    assert "The mappings were not saved" in response.text
    assert message in response.text.replace("&#39;", "'")
    # What was typed stays on the page, and nothing was stored.
    assert f'value="{rows[-1][0]}"' in response.text
    async with session_factory() as session:
        assert len(await load_mappings(session)) == len(DEFAULT_MAPPINGS)
