"""The console in a real browser: headless Chromium (Debian's) driven by Playwright against the
real service process with fake platforms. Each page's screenshot goes to docs/screenshots/."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.salesforce import FakeSalesforce
from playwright.sync_api import Browser, Page, expect, sync_playwright
from support.service import ADMIN_TOKEN, Service, property_change, wait_until

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="browser tests need Debian's chromium at /usr/bin/chromium "
        "(apt-get install -y chromium; .ci/run installs it)",
    ),
]

# Every form control must have an accessible name: a <label>, aria-label, or its own text.
UNLABELLED_CONTROLS = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button')]
  .filter((el) => el.getClientRects().length > 0)
  .filter((el) => {
    const labels = el.labels ? [...el.labels].map((l) => l.textContent.trim()).join(' ') : '';
    const own = el.tagName === 'BUTTON' ? el.textContent.trim() : '';
    return !(labels || el.getAttribute('aria-label') || own);
  })
  .map((el) => el.outerHTML.slice(0, 160))"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, service: Service) -> Iterator[Page]:
    context = browser.new_context(base_url=service.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    # Console errors other than answers with an error status (a wrong token is a 401, a form
    # with errors a 422): script errors and Content-Security-Policy violations.
    opened.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    yield opened
    context.close()
    assert problems == []


def check_page(page: Page, screenshot: str | None = None) -> None:
    """Every control labelled; the page is saved as docs/screenshots/<name>.png when named."""
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    if screenshot:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{screenshot}.png", full_page=True)


def sign_in(page: Page) -> None:
    page.goto("/console")
    expect(page).to_have_url(re.compile(r"/console/sign-in"))
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1, name="Limit what syncs")).to_be_visible()


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Console").get_by_role("link", name=name).click()


def contacts_stored(service: Service, count: int) -> bool:
    return len(service.api.get("/api/contacts").json()["items"]) >= count


def test_sign_in_refuses_a_wrong_token_and_signs_out(page: Page) -> None:
    page.goto("/console/segments")
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next=%2Fconsole%2Fsegments"))
    check_page(page, "sign-in")

    page.get_by_label("Admin token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("That is not the admin token")

    # Keyboard only: the token field has the focus, Enter submits.
    expect(page.get_by_label("Admin token")).to_be_focused()
    page.keyboard.type(ADMIN_TOKEN)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="Segments")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "syncgate_console")
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/console")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_contain_text("Signed out")
    page.goto("/console/health")
    expect(page).to_have_url(re.compile(r"/console/sign-in"))


def test_build_review_save_pick_as_inclusion_segment_and_resync(
    page: Page, service: Service, salesforce: FakeSalesforce
) -> None:
    people = [
        ("ada@example.com", "Ada", "customer", "DK"),
        ("bo@example.com", "Bo", "customer", "SE"),
        ("cy@example.com", "Cy", "customer", "US"),
        ("di@example.com", "Di", "lead", "DK"),
        ("eve@vip.example", "Eve", "lead", "US"),
    ]
    service.send_hubspot(
        [
            property_change(800 + i, name, value)
            for i, person in enumerate(people)
            for name, value in zip(
                ("email", "firstname", "lifecyclestage", "country"), person, strict=True
            )
        ]
    )
    wait_until(lambda: contacts_stored(service, len(people)))
    service.api.post("/api/segments", json={"name": "Trade show", "type": "static"})

    sign_in(page)
    nav(page, "Segments")
    page.get_by_role("link", name="+ New active segment").click()
    page.get_by_label("Name", exact=True).fill("Nordic customers and VIPs")
    save = page.get_by_role("button", name="Save segment")
    expect(save).to_be_disabled()

    group = page.locator("[data-group]").nth(0)
    first = group.locator("[data-row]").nth(0)
    first.get_by_label("Property").fill("lifecyclestage")
    first.get_by_label("Operator").select_option("eq")
    first.get_by_label("Value").fill("customer")
    group.get_by_role("button", name="Add condition to group 1").click()
    second = group.locator("[data-row]").nth(1)
    expect(second.get_by_label("Property")).to_be_focused()
    second.get_by_label("Property").fill("country")
    second.get_by_label("Operator").select_option("in")
    second.get_by_label("Value").fill("DK, SE")
    expect(second.locator("[data-joiner]")).to_have_text("AND")

    page.get_by_role("button", name="+ Add group").click()
    page.get_by_label("Contacts must match").select_option("any")
    vip = page.locator("[data-group]").nth(1).locator("[data-row]").nth(0)
    vip.get_by_label("Property").fill("email")
    vip.get_by_label("Operator").select_option("ends_with")
    vip.get_by_label("Value").fill("@vip.example")
    expect(page.locator("[data-group]").nth(1).locator("[data-group-joiner]")).to_have_text("OR")

    page.get_by_role("button", name="Review").click()
    review = page.get_by_role("region", name="Review: 3 contacts match")
    expect(review).to_be_visible()
    for email in ("ada@example.com", "bo@example.com", "eve@vip.example"):
        expect(review.get_by_role("cell", name=email)).to_be_visible()
    expect(save).to_be_enabled()
    check_page(page, "segment-builder")

    save.click()
    expect(page.get_by_role("status")).to_contain_text("Saved “Nordic customers and VIPs”")
    row = page.get_by_role("row", name=re.compile("Nordic customers and VIPs"))
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text("3")
    expect(row).to_contain_text("Ready")
    check_page(page, "segments")
    saved = service.api.get("/api/segments").json()["items"]
    nordic = next(s for s in saved if s["name"] == "Nordic customers and VIPs")
    assert nordic["filter"] == {
        "any": [
            {
                "all": [
                    {"property": "lifecyclestage", "operator": "eq", "value": "customer"},
                    {"property": "country", "operator": "in", "value": ["DK", "SE"]},
                ]
            },
            {"property": "email", "operator": "ends_with", "value": "@vip.example"},
        ]
    }

    nav(page, "Limit what syncs")
    choice = page.get_by_label("Sync only contacts in")
    expect(choice.locator("option", has_text="Trade show")).to_be_disabled()
    expect(choice.locator("option", has_text="Trade show")).to_contain_text("static")
    choice.select_option(label="Nordic customers and VIPs (3 contacts)")  # applies at once
    expect(page.get_by_role("status")).to_contain_text("Nothing is synced by this change itself")
    expect(page.locator("[data-current-choice]")).to_contain_text("Nordic customers and VIPs")
    assert service.api.get("/api/settings/inclusion-segment").json() == {"segment_id": nordic["id"]}

    # With the keyboard, arrows only move the choice; Enter applies it.
    choice.focus()
    page.keyboard.press("ArrowUp")
    expect(choice).to_have_value("")
    expect(page.locator("[data-current-choice]")).to_contain_text("Nordic customers and VIPs")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("No inclusion segment")
    assert service.api.get("/api/settings/inclusion-segment").json() == {"segment_id": None}
    page.get_by_label("Sync only contacts in").select_option(str(nordic["id"]))
    expect(page.locator("[data-current-choice]")).to_contain_text("Nordic customers and VIPs")

    page.get_by_role("button", name="Resync now").click()
    progress = page.get_by_role("region", name=re.compile("Resync progress"))
    expect(progress.get_by_role("status")).to_contain_text(
        "Done: 3 of 3 members processed (100%)", timeout=20_000
    )
    expect(progress.locator("progress")).to_have_attribute("value", "100")
    check_page(page, "limit-what-syncs")
    for email in ("ada@example.com", "bo@example.com", "eve@vip.example"):
        assert salesforce.find_by_email(email)


def test_static_segment_members_are_edited_by_email_and_it_cannot_be_picked(
    page: Page, service: Service
) -> None:
    service.send_hubspot(
        [
            property_change(850, "email", "fair1@example.com"),
            property_change(851, "email", "fair2@example.com"),
        ]
    )
    wait_until(lambda: contacts_stored(service, 2))
    sign_in(page)
    nav(page, "Segments")
    page.get_by_role("link", name="+ New static segment").click()
    expect(page.get_by_label("Static: a list of contacts you edit by email")).to_be_checked()
    expect(page.get_by_text("Criteria", exact=True)).to_be_hidden()
    page.get_by_label("Name", exact=True).fill("Trade show list")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Trade show list")

    page.get_by_label("Email addresses").fill(
        "fair1@example.com\nFAIR2@example.com, nobody@example.com"
    )
    page.get_by_role("button", name="Add members").click()
    expect(page.get_by_role("alert")).to_contain_text("Added 2 members")
    expect(page.get_by_role("alert")).to_contain_text("No contact has nobody@example.com")
    members = page.get_by_role("region", name="Members (2)")
    expect(members.get_by_role("cell", name="fair2@example.com")).to_be_visible()
    check_page(page, "segment-static")

    nav(page, "Limit what syncs")
    option = page.get_by_label("Sync only contacts in").locator("option", has_text="Trade show")
    expect(option).to_be_disabled()
    expect(page.locator("#inclusion-help")).to_contain_text("Static segments are listed")
    # Even a forged choice is refused, by the same rule as PUT /api/settings/inclusion-segment.
    page.evaluate(
        """() => {
          const option = [...document.querySelectorAll('#inclusion-segment option')]
            .find((o) => o.textContent.includes('Trade show'));
          option.disabled = false;
          option.selected = true;
          document.querySelector('[data-inclusion-form]').submit();
        }"""
    )
    expect(page.get_by_role("alert")).to_contain_text("only an active segment can be the inclusion")
    assert service.api.get("/api/settings/inclusion-segment").json() == {"segment_id": None}


def test_dead_delivery_is_explained_and_retried(
    page: Page, service: Service, salesforce: FakeSalesforce
) -> None:
    salesforce.reject_records(
        lambda record: record.get("LastName") == "Invalid",
        status_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
        message="Last name may not be Invalid",
        times=1,
    )
    service.send_hubspot(
        [
            property_change(970, "email", "dead@example.com"),
            property_change(970, "lastname", "Invalid"),
            property_change(971, "email", "fine@example.com"),
        ]
    )

    def dead() -> list[dict[str, Any]]:
        return list(service.api.get("/api/deliveries", params={"status": "dead"}).json()["items"])

    (delivery,) = wait_until(dead)
    wait_until(lambda: salesforce.find_by_email("fine@example.com"))

    sign_in(page)
    nav(page, "Sync health")
    group = page.get_by_role("article")
    expect(group).to_contain_text("Salesforce said:")
    expect(group).to_contain_text("Last name may not be Invalid")
    expect(group.get_by_role("cell", name="dead@example.com")).to_be_visible()
    decisions = page.get_by_role("region", name="Decisions in the last 24 hours")
    forwarded = [
        d
        for d in service.decisions(decision="forwarded")
        if d["direction"] == "hubspot_to_salesforce"
    ]
    row = decisions.get_by_role("row", name=re.compile("^Forwarded"))
    expect(row.get_by_role("cell").nth(0)).to_have_text(str(len(forwarded)))
    expect(page.get_by_role("region", name="Webhook → delivered")).to_contain_text("p99")
    check_page(page, "sync-health")

    page.get_by_label("Look up a contact by email").fill("dead@example.com")
    page.get_by_role("button", name="Explain its sync status").click()
    contact = page.get_by_role("region", name=re.compile("dead@example.com"))
    expect(contact).to_contain_text("Syncs")
    expect(contact).to_contain_text("a delivery to salesforce is dead: ")
    check_page(page, "contact-lookup")

    contact.get_by_role("button", name=f"Retry delivery {delivery['id']}").click()
    expect(page.get_by_role("status")).to_contain_text(
        f"Delivery {delivery['id']} is pending again"
    )
    wait_until(lambda: salesforce.find_by_email("dead@example.com"))
    nav(page, "Sync health")
    expect(page.get_by_text("No dead deliveries.")).to_be_visible()


def test_settings_and_mappings_are_validated_and_saved(page: Page, service: Service) -> None:
    sign_in(page)
    nav(page, "Mappings & settings")
    page.get_by_label("Leads", exact=True).uncheck()
    page.get_by_label("Contact", exact=True).check()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_contain_text("Settings saved.")
    assert service.api.get("/api/settings").json() == {
        "inclusion_segment_id": None,
        "create_hubspot_contacts_from": {"leads": False, "contacts": True},
        "new_hubspot_contacts_as": "Contact",
    }

    rows = page.locator("[data-mapping-row]")
    before = rows.count()
    page.get_by_role("button", name="+ Add row").click()
    expect(rows).to_have_count(before + 1)
    page.get_by_label(f"Row {before + 1} HubSpot property").fill("1st_choice")
    page.get_by_label(f"Row {before + 1} Lead field").fill("First_Choice__c")
    page.get_by_label(f"Row {before + 1} sync rule").select_option("always_salesforce")
    page.get_by_role("button", name="Save mappings").click()
    errors = page.get_by_role("alert")
    expect(errors).to_contain_text("The mappings were not saved")
    expect(errors).to_contain_text("HubSpot property: use letters, digits and underscores")
    check_page(page, "settings")

    wrong = page.locator("[data-mapping-row] input[value='1st_choice']")
    wrong.fill("first_choice")
    page.get_by_role("button", name="Save mappings").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    items = service.api.get("/api/mappings").json()["items"]
    assert {
        "hubspot_property": "first_choice",
        "lead_field": "First_Choice__c",
        "contact_field": None,
        "rule": "always_salesforce",
    } in items


def test_without_javascript_the_filter_json_and_apply_button_work(
    browser: Browser, service: Service
) -> None:
    context = browser.new_context(base_url=service.url, java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page)
        page.goto("/console/segments/new")
        expect(page.locator("[data-builder]")).to_be_hidden()
        page.get_by_label("Name", exact=True).fill("Known emails")
        page.get_by_label("Filter JSON").fill('{"property": "email", "operator": "is_known"}')
        page.get_by_role("button", name="Review").click()
        expect(page.get_by_role("heading", name="Review: 0 contacts match")).to_be_visible()
        page.get_by_role("button", name="Save segment").click()
        expect(page.get_by_role("status")).to_contain_text("Saved “Known emails”")

        nav(page, "Limit what syncs")
        page.get_by_label("Sync only contacts in").select_option(label="Known emails (0 contacts)")
        expect(page.locator("[data-current-choice]")).to_contain_text("no segment is chosen")
        page.get_by_role("button", name="Apply").click()
        expect(page.locator("[data-current-choice]")).to_contain_text("Known emails")
    finally:
        context.close()
