"""Delivery to Salesforce through the real steps: coalescing, batching, matching, creation."""

from datetime import UTC, datetime, timedelta

import pytest
from delivery.harness import Env, change, event, now_ms

from syncgate.sync.decide.outcomes import Decision
from syncgate.sync.mapping import DEFAULT_MAPPINGS, Mapping
from syncgate.sync.models import SyncRule


async def test_changes_queued_before_delivery_become_one_write_with_the_latest_values(
    env: Env,
) -> None:
    hubspot_id = env.hubspot.add_contact(email="co@example.com", firstname="A", lastname="Lee")
    await env.sync(event("contact.creation", hubspot_id))
    env.salesforce.clear_log()
    at = now_ms() + 1000
    await env.send(
        change(hubspot_id, "firstname", "B", occurredAt=at),
        change(hubspot_id, "firstname", "D", occurredAt=at + 2),
        change(hubspot_id, "firstname", "C", occurredAt=at + 1),  # arrives late, older than D
        change(hubspot_id, "jobtitle", "CTO", occurredAt=at + 3),
    )
    await env.process()

    pending = [d for d in await env.deliveries() if d.status == "pending"]
    assert len(pending) == 1
    assert pending[0].values == {"firstname": "D", "jobtitle": "CTO"}

    await env.deliver()

    assert env.salesforce.records_per_write_call == [1]
    [write] = env.salesforce.requests_to("/composite/sobjects", "PATCH")
    [record] = write.json["records"]
    assert {k: v for k, v in record.items() if k not in ("attributes", "id")} == {
        "FirstName": "D",
        "Title": "CTO",
    }
    [lead] = env.salesforce.find_by_email("co@example.com")
    assert (lead["FirstName"], lead["Title"]) == ("D", "CTO")


async def test_a_creation_and_its_following_changes_become_one_create(env: Env) -> None:
    hubspot_id = env.hubspot.add_contact(email="one@example.com", lastname="One")
    await env.send(
        event("contact.creation", hubspot_id),
        change(hubspot_id, "firstname", "Uno", occurredAt=now_ms() + 1000),
    )
    await env.process()
    await env.deliver()

    assert [(w.operation, w.size) for w in env.salesforce.writes] == [("create", 1)]
    [lead] = env.salesforce.find_by_email("one@example.com")
    assert (lead["FirstName"], lead["LastName"]) == ("Uno", "One")


async def test_500_new_contacts_are_created_in_calls_of_at_most_200(env: Env) -> None:
    await env.queue_creates(500)

    await env.deliver()

    assert env.salesforce.records_per_write_call == [200, 200, 100]
    assert len(env.salesforce.records) == 500
    deliveries = await env.deliveries()
    assert {d.status for d in deliveries} == {"done"}
    assert len(deliveries) == 500


@pytest.mark.parametrize("object_type", ["Lead", "Contact"])
async def test_an_existing_record_with_the_email_is_linked_and_updated_not_duplicated(
    env: Env, object_type: str
) -> None:
    company = {"Company": "Acme"} if object_type == "Lead" else {}
    existing = env.salesforce.add_record(
        object_type, company, LastName="Existing", Email="Ann.Lee@Example.COM", Phone="555-0100"
    )
    hubspot_id = env.hubspot.add_contact(email="ann.lee@example.com", firstname="Ann")

    await env.sync(event("contact.creation", hubspot_id))

    [record] = env.salesforce.find_by_email("ann.lee@example.com")
    assert record["Id"] == existing
    assert record["FirstName"] == "Ann"
    assert record["LastName"] == "Existing"  # HubSpot has no last name: nothing to send
    assert record["Phone"] == "555-0100"
    assert [w.operation for w in env.salesforce.writes] == ["update"]
    contact = await env.contact(hubspot_id)
    assert (contact.salesforce_id, contact.salesforce_object) == (existing, object_type)
    [delivery] = await env.deliveries()
    assert (delivery.status, delivery.operation) == ("done", "update")


@pytest.mark.parametrize("newer", ["Lead", "Contact"])
async def test_the_most_recently_modified_of_lead_and_contact_wins(env: Env, newer: str) -> None:
    older = "Contact" if newer == "Lead" else "Lead"
    base = datetime.now(UTC) - timedelta(days=2)
    company = {"Company": "Acme"}
    older_id = env.salesforce.add_record(
        older,
        company if older == "Lead" else {},
        LastName="Older",
        Email="both@example.com",
        created=base,
    )
    newer_id = env.salesforce.add_record(
        newer,
        company if newer == "Lead" else {},
        LastName="Newer",
        Email="BOTH@example.com",
        created=base + timedelta(hours=1),
    )
    hubspot_id = env.hubspot.add_contact(email="both@example.com", firstname="Bo")

    await env.sync(event("contact.creation", hubspot_id))

    contact = await env.contact(hubspot_id)
    assert (contact.salesforce_id, contact.salesforce_object) == (newer_id, newer)
    assert (env.salesforce.get(newer_id) or {})["FirstName"] == "Bo"
    assert (env.salesforce.get(older_id) or {})["FirstName"] is None
    assert len(env.salesforce.records) == 2


async def test_prefer_salesforce_unless_blank_keeps_a_found_records_values(env: Env) -> None:
    prefer = SyncRule.PREFER_SALESFORCE_UNLESS_BLANK
    await env.set_mappings(
        [
            *DEFAULT_MAPPINGS,
            Mapping("leadsource", "LeadSource", "LeadSource", prefer),
            Mapping("rating", "Rating", None, prefer),
        ]
    )
    env.hubspot.define_property("leadsource")
    env.hubspot.define_property("rating")
    existing = env.salesforce.add_record(
        "Lead", LastName="Pref", Company="Acme", Email="pref@example.com", LeadSource="Web"
    )
    hubspot_id = env.hubspot.add_contact(
        email="pref@example.com", firstname="Pia", leadsource="Partner", rating="Hot"
    )

    await env.sync(event("contact.creation", hubspot_id))

    lead = env.salesforce.get(existing) or {}
    assert lead["LeadSource"] == "Web"  # not blank in Salesforce: Salesforce's value stays
    assert lead["Rating"] == "Hot"  # blank in Salesforce: HubSpot's value fills it
    assert lead["FirstName"] == "Pia"

    # Linked now: a later HubSpot change of the field still leaves Salesforce's value alone.
    writes = env.salesforce.write_calls
    await env.sync(change(hubspot_id, "leadsource", "Event", occurredAt=now_ms() + 1000))
    assert (await env.decisions(hubspot_id))[-1].decision == Decision.SKIPPED_NO_CHANGE
    assert env.salesforce.write_calls == writes
    assert (env.salesforce.get(existing) or {})["LeadSource"] == "Web"


async def test_a_new_lead_gets_not_provided_for_a_missing_company_and_last_name(
    env: Env,
) -> None:
    hubspot_id = env.hubspot.add_contact(email="np@example.com", firstname="Nora")

    await env.sync(event("contact.creation", hubspot_id))

    [lead] = env.salesforce.find_by_email("np@example.com")
    assert lead["attributes"]["type"] == "Lead"
    assert (lead["FirstName"], lead["LastName"], lead["Company"]) == (
        "Nora",
        "[not provided]",
        "[not provided]",
    )
    # The placeholder is what Salesforce has: a real last name later replaces it.
    await env.sync(change(hubspot_id, "lastname", "Nash", occurredAt=now_ms() + 1000))
    assert (env.salesforce.get(lead["Id"]) or {})["LastName"] == "Nash"


async def test_new_contacts_as_contact_creates_salesforce_contacts(env: Env) -> None:
    await env.set_new_contacts_as("Contact")
    hubspot_id = env.hubspot.add_contact(
        email="asc@example.com", firstname="Cy", company="Acme", city="Lyon"
    )

    await env.sync(event("contact.creation", hubspot_id))

    [record] = env.salesforce.find_by_email("asc@example.com")
    assert record["attributes"]["type"] == "Contact"
    assert (record["FirstName"], record["LastName"], record["MailingCity"]) == (
        "Cy",
        "[not provided]",
        "Lyon",
    )
    assert (await env.contact(hubspot_id)).salesforce_object == "Contact"


async def test_an_expired_token_is_renewed_once_and_the_call_repeated(env: Env) -> None:
    client = env.salesforce_client()
    hubspot_id = env.hubspot.add_contact(email="tok@example.com", lastname="Tok")
    await env.send(event("contact.creation", hubspot_id))
    await env.process()
    await env.deliver(client)
    env.salesforce.expire_tokens()
    env.salesforce.clear_log()

    await env.sync()  # nothing due: no call, no renewal
    await env.send(change(hubspot_id, "firstname", "Tia", occurredAt=now_ms() + 1000))
    await env.process()
    await env.deliver(client)

    statuses = [(r.path.rsplit("/", 1)[-1], r.status) for r in env.salesforce.requests]
    assert statuses == [("sobjects", 401), ("token", 200), ("sobjects", 200)]
    [_, delivery] = await env.deliveries()
    assert (delivery.status, delivery.attempts) == ("done", 1)
    assert (env.salesforce.find_by_email("tok@example.com")[0])["FirstName"] == "Tia"


async def test_a_found_record_linked_to_another_contact_is_not_overwritten(env: Env) -> None:
    owner_id = env.hubspot.add_contact(email="first@example.com", firstname="First")
    await env.sync(event("contact.creation", owner_id))
    record_id = (await env.contact(owner_id)).salesforce_id
    assert record_id is not None
    # A Salesforce user changes the email; the link to the first contact stays.
    env.salesforce.update_record(record_id, Email="second@example.com")
    newcomer_id = env.hubspot.add_contact(email="second@example.com", firstname="Second")

    await env.sync(event("contact.creation", newcomer_id))

    assert (env.salesforce.get(record_id) or {})["FirstName"] == "First"
    [_, delivery] = await env.deliveries()
    assert delivery.status == "dead"
    assert f"already linked to contact {(await env.contact(owner_id)).id}" in (
        delivery.last_error or ""
    )
    assert (await env.contact(newcomer_id)).salesforce_id is None


@pytest.mark.parametrize(("prop", "field"), [("lastname", "LastName"), ("company", "Company")])
async def test_clearing_a_required_lead_field_in_hubspot_sends_not_provided(
    env: Env, prop: str, field: str
) -> None:
    hubspot_id = env.hubspot.add_contact(
        email="req@example.com", firstname="Rae", lastname="Req", company="Acme"
    )
    await env.sync(event("contact.creation", hubspot_id))
    at = now_ms() + 1000

    await env.sync(
        change(hubspot_id, prop, "", occurredAt=at),
        change(hubspot_id, "firstname", "Ray", occurredAt=at + 1),
    )

    assert {d.status for d in await env.deliveries()} == {"done"}
    [lead] = env.salesforce.find_by_email("req@example.com")
    assert (lead[field], lead["FirstName"]) == ("[not provided]", "Ray")


async def test_a_change_for_a_converted_lead_goes_to_its_contact_which_becomes_the_link(
    env: Env,
) -> None:
    hubspot_id = env.hubspot.add_contact(email="conv@example.com", lastname="Conv")
    await env.sync(event("contact.creation", hubspot_id))
    lead_id = (await env.contact(hubspot_id)).salesforce_id
    assert lead_id is not None
    contact_id = env.salesforce.convert_lead(lead_id)

    await env.sync(change(hubspot_id, "firstname", "Cora", occurredAt=now_ms() + 1000))

    assert {d.status for d in await env.deliveries()} == {"done"}
    assert (env.salesforce.get(contact_id) or {})["FirstName"] == "Cora"
    contact = await env.contact(hubspot_id)
    assert (contact.salesforce_id, contact.salesforce_object) == (contact_id, "Contact")
    # Later changes go straight to the Contact.
    env.salesforce.clear_log()
    await env.sync(change(hubspot_id, "jobtitle", "COO", occurredAt=now_ms() + 2000))
    patches = env.salesforce.requests_to("/composite/sobjects", "PATCH")
    assert [[r["id"] for r in p.json["records"]] for p in patches] == [[contact_id]]
    assert (env.salesforce.get(contact_id) or {})["Title"] == "COO"
