"""Field mappings and sync settings, validated by the admin API's own schemas."""

import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from syncgate.api import settings as settings_api
from syncgate.console import auth
from syncgate.console.web import ConsoleRoute, Db, redirect, render, validation_messages
from syncgate.sync import preferences
from syncgate.sync.mapping import load_mappings
from syncgate.sync.models import SyncRule
from syncgate.sync.schemas import MappingList, SettingsPatch

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

RULES = (
    (SyncRule.TWO_WAY, "Two-way (latest value wins)"),
    (SyncRule.PREFER_SALESFORCE_UNLESS_BLANK, "Prefer Salesforce unless blank"),
    (SyncRule.ALWAYS_SALESFORCE, "Always use Salesforce"),
    (SyncRule.DONT_SYNC, "Don't sync"),
)
BLANK_ROWS = 3
_ROW = re.compile(r"^Row (\d+)")
MAPPING_LABELS = {
    "items": "Row",
    "hubspot_property": "HubSpot property",
    "lead_field": "Lead field",
    "contact_field": "Contact field",
    "rule": "sync rule",
}
SETTINGS_LABELS = {
    "create_hubspot_contacts_from": "Create HubSpot contacts from",
    "leads": "Leads",
    "contacts": "Contacts",
    "new_hubspot_contacts_as": "Create new Salesforce records as",
}


@dataclass
class MappingRow:
    hubspot_property: str = ""
    lead_field: str = ""
    contact_field: str = ""
    rule: str = SyncRule.TWO_WAY.value

    def blank(self) -> bool:
        return not (self.hubspot_property or self.lead_field or self.contact_field)


def _row_labels(messages: list[str]) -> list[str]:
    # Rows are numbered from 1 on the page; pydantic counts from 0.
    return [_ROW.sub(lambda match: f"Row {int(match[1]) + 1}", message) for message in messages]


async def _page(
    request: Request,
    session: auth.Ticket,
    db: Db,
    *,
    rows: list[MappingRow] | None = None,
    mapping_errors: list[str] | None = None,
    settings_values: dict[str, Any] | None = None,
    settings_errors: list[str] | None = None,
    status: int = 200,
) -> Response:
    if rows is None:
        rows = [
            MappingRow(m.hubspot_property, m.lead_field or "", m.contact_field or "", m.rule)
            for m in await load_mappings(db)
        ]
    if settings_values is None:
        row = await preferences.load_settings(db)
        settings_values = {
            "leads": row.create_from_leads,
            "contacts": row.create_from_contacts,
            "new_as": row.new_contacts_as,
        }
    return render(
        request,
        "settings.html",
        {
            "title": "Mappings & settings",
            "rows": [*rows, *(MappingRow() for _ in range(BLANK_ROWS))],
            "rules": RULES,
            "mapping_errors": mapping_errors or [],
            "values": settings_values,
            "settings_errors": settings_errors or [],
        },
        session=session,
        status=status,
        page="settings",
    )


@router.get("/settings")
async def settings_page(request: Request, session: auth.SessionTicket, db: Db) -> Response:
    return await _page(request, session, db)


@router.post("/settings")
async def save_settings(request: Request, posted: auth.PostedForm, db: Db) -> Response:
    values = {
        "leads": posted.text("create_from_leads") == "on",
        "contacts": posted.text("create_from_contacts") == "on",
        "new_as": posted.text("new_contacts_as"),
    }
    try:
        body = SettingsPatch.model_validate(
            {
                "create_hubspot_contacts_from": {
                    "leads": values["leads"],
                    "contacts": values["contacts"],
                },
                "new_hubspot_contacts_as": values["new_as"],
            }
        )
    except ValidationError as error:
        return await _page(
            request,
            posted.session,
            db,
            settings_values=values,
            settings_errors=validation_messages(error, SETTINGS_LABELS),
            status=422,
        )
    await settings_api.patch_settings(body, db)
    return redirect(request, "/console/settings", "Settings saved.")


@router.post("/mappings")
async def save_mappings(request: Request, posted: auth.PostedForm, db: Db) -> Response:
    count = int(posted.text("rows", "0")) if posted.text("rows", "0").isdigit() else 0
    rows = []
    for index in range(min(count, auth.MAX_FORM_FIELDS)):
        row = MappingRow(
            posted.text(f"m{index}_hubspot_property").strip(),
            posted.text(f"m{index}_lead_field").strip(),
            posted.text(f"m{index}_contact_field").strip(),
            posted.text(f"m{index}_rule", SyncRule.TWO_WAY.value),
        )
        if not row.blank() and posted.text(f"m{index}_remove") != "on":
            rows.append(row)
    try:
        body = MappingList.model_validate(
            {
                "items": [
                    {
                        "hubspot_property": row.hubspot_property,
                        "lead_field": row.lead_field or None,
                        "contact_field": row.contact_field or None,
                        "rule": row.rule,
                    }
                    for row in rows
                ]
            }
        )
    except ValidationError as error:
        return await _page(
            request,
            posted.session,
            db,
            rows=rows,
            mapping_errors=_row_labels(validation_messages(error, MAPPING_LABELS)),
            status=422,
        )
    saved = await settings_api.put_mappings(body, db)
    return redirect(
        request, "/console/settings", f"Saved {len(saved.items)} field mappings (email included)."
    )
