"""Accessible basics on every console page: labelled controls, one h1, landmarks, text status."""

import json
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from console.helpers import Console
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.delivery.models import Delivery
from syncgate.sync import segments
from syncgate.sync.models import SegmentType

CONTROLS = {"input", "select", "textarea"}


class Page(HTMLParser):
    """Collects controls, which of them a <label> names, headings and landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.open_labels: list[list[dict[str, str | None]]] = []
        self.wrapped: list[dict[str, str | None]] = []
        self.buttons: list[str] = []
        self.button_text: list[str] | None = None
        self.button_attrs: dict[str, str | None] = {}
        self.h1 = 0
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "label":
            if attributes.get("for"):
                self.label_for.add(attributes["for"] or "")
            self.open_labels.append([])
        if tag in CONTROLS and attributes.get("type") != "hidden":
            self.controls.append(attributes)
            if self.open_labels:
                self.open_labels[-1].append(attributes)
        if tag == "button":
            self.button_text = []
            self.button_attrs = attributes
        if tag == "h1":
            self.h1 += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self.open_labels:
            self.wrapped.extend(self.open_labels.pop())
        if tag == "button" and self.button_text is not None:
            name = "".join(self.button_text).strip() or (self.button_attrs.get("aria-label") or "")
            self.buttons.append(name)
            self.button_text = None

    def handle_data(self, data: str) -> None:
        if self.button_text is not None:
            self.button_text.append(data)

    def unlabelled(self) -> list[dict[str, str | None]]:
        return [
            control
            for control in self.controls
            if control.get("id") not in self.label_for
            and not any(control is wrapped for wrapped in self.wrapped)
            and not control.get("aria-label")
        ]


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


@pytest.fixture
async def pages(
    console: Console, seed: Callable[..., Any], session_factory: async_sessionmaker[AsyncSession]
) -> dict[str, str]:
    contact = await seed("ada@example.com", lifecyclestage="customer", firstname="Ada")
    customers = {"property": "lifecyclestage", "operator": "eq", "value": "customer"}
    async with session_factory() as session, session.begin():
        active = await segments.create_segment(session, "Customers", SegmentType.ACTIVE, customers)
        static = await segments.create_segment(session, "Fair", SegmentType.STATIC, None)
        session.add(
            Delivery(
                target="salesforce",
                operation="create",
                contact_id=contact,
                values={},
                status="dead",
                last_error="boom",
            )
        )
    review = await console.post(
        "/console/segments/new",
        {"name": "x", "type": "active", "filter": json.dumps(customers), "action": "review"},
    )
    bad_mappings = await console.post(
        "/console/mappings", {"rows": "1", "m0_hubspot_property": "1x", "m0_lead_field": "A"}
    )
    await console.post(f"/console/segments/{active.id}/resync")
    result = {"review": review.text, "mappings with errors": bad_mappings.text}
    for name, path in {
        "home": "/console?job=1",
        "segments": "/console/segments",
        "new": "/console/segments/new",
        "active": f"/console/segments/{active.id}",
        "static": f"/console/segments/{static.id}",
        "health": "/console/health",
        "contacts": "/console/contacts?email=ada@example.com",
        "settings": "/console/settings",
        "not found": "/console/nope",
    }.items():
        result[name] = (await console.get(path)).text
    await console.post("/console/sign-out")
    result["sign-in"] = (await console.get("/console/sign-in?next=/x")).text
    return result


async def test_every_control_is_labelled(pages: dict[str, str]) -> None:
    for name, html in pages.items():
        page = parse(html)
        assert page.unlabelled() == [], name
        assert all(page.buttons), (name, page.buttons)


async def test_every_page_has_one_h1_a_language_and_a_skip_link(pages: dict[str, str]) -> None:
    for name, html in pages.items():
        page = parse(html)
        assert page.h1 == 1, name
        assert '<html lang="en">' in html, name
        assert '<a class="skip-link" href="#main">' in html, name
        assert '<main id="main"' in html, name


async def test_the_current_page_is_marked_in_the_navigation(pages: dict[str, str]) -> None:
    assert '<a href="/console/health" aria-current="page">Sync health</a>' in pages["health"]
    assert '<a href="/console" aria-current="page">Limit what syncs</a>' in pages["home"]


async def test_status_is_spelled_out_not_only_coloured(pages: dict[str, str]) -> None:
    assert "✓</span> Ready" in pages["segments"]
    assert "Static" in pages["segments"] and "Active" in pages["segments"]
    assert "Not limited" in pages["home"]
    assert "Queued: waiting for a worker to start it." in pages["home"]
    assert "✕</span> 1" in pages["health"]
    assert "✓</span> Syncs" in pages["contacts"]
    assert 'role="alert"' in pages["mappings with errors"]


async def test_no_inline_script_or_style(pages: dict[str, str]) -> None:
    # The Content-Security-Policy allows scripts and styles from /console/static only.
    for name, html in pages.items():
        page = parse(html)
        for tag, attributes in page.tags:
            assert "style" not in attributes, (name, tag)
            assert not any(key.startswith("on") for key in attributes), (name, tag)
            if tag == "script":
                assert (attributes.get("src") or "").startswith("/console/static/"), name
