"""The contact mirror: per-property change times, idempotence, blanks and the email column."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.store import upsert_hubspot_contact

from syncgate.sync.contacts import ContactState, apply_properties, normalise_email
from syncgate.sync.models import Contact


def blank() -> ContactState:
    return ContactState(hubspot_id="1")


def stored(contact: ContactState) -> dict[str, tuple[str | None, int]]:
    return {name: (p.value, p.changed_at_ms) for name, p in contact.properties.items()}


def forms(contact: ContactState) -> dict[str, tuple[str | None, float | None]]:
    """The folded and numeric forms the store writes for segment filters."""
    rows = [p.row(0, name) for name, p in contact.properties.items()]
    return {row["name"]: (row["value_folded"], row["value_number"]) for row in rows}


async def find_by_hubspot_id(session: AsyncSession, hubspot_id: str) -> Contact | None:
    return await session.scalar(select(Contact).where(Contact.hubspot_id == hubspot_id))


async def find_by_email(session: AsyncSession, email: str) -> list[Contact]:
    found = await session.scalars(
        select(Contact).where(Contact.email == normalise_email(email)).order_by(Contact.id)
    )
    return list(found)


def test_new_values_are_stored() -> None:
    contact = blank()
    update = apply_properties(contact, {"firstname": "Ann", "city": "Lyon"}, 100)
    assert update.changed == {"firstname", "city"}
    assert stored(contact) == {"firstname": ("Ann", 100), "city": ("Lyon", 100)}


def test_an_older_change_never_overwrites_a_newer_one() -> None:
    contact = blank()
    apply_properties(contact, {"firstname": "New", "city": "Paris"}, 200)
    # Arrives late: older than what is stored.
    update = apply_properties(contact, {"firstname": "Old", "city": None, "lastname": "Doe"}, 100)
    assert update.changed == {"lastname"}
    assert update.stale == {"firstname", "city"}
    assert stored(contact) == {
        "firstname": ("New", 200),
        "city": ("Paris", 200),
        "lastname": ("Doe", 100),
    }
    # A newer change still wins, property by property.
    update = apply_properties(contact, {"firstname": "Newest"}, 300)
    assert update.changed == {"firstname"}
    assert stored(contact)["firstname"] == ("Newest", 300)
    assert stored(contact)["city"] == ("Paris", 200)


def test_out_of_order_changes_end_in_the_same_state() -> None:
    changes = [({"firstname": "A"}, 1), ({"firstname": "B"}, 3), ({"firstname": "C"}, 2)]
    in_order = blank()
    for values, at in sorted(changes, key=lambda change: change[1]):
        apply_properties(in_order, values, at)
    shuffled = blank()
    for values, at in changes:
        apply_properties(shuffled, values, at)
    assert stored(in_order) == stored(shuffled) == {"firstname": ("B", 3)}


def test_a_deletion_is_a_change_with_a_time_too() -> None:
    contact = blank()
    apply_properties(contact, {"city": "Lyon"}, 100)
    assert apply_properties(contact, {"city": None}, 200).changed == {"city"}
    assert apply_properties(contact, {"city": "Lyon"}, 150).changed == set()
    assert stored(contact) == {"city": (None, 200)}


def test_repeated_changes_are_idempotent() -> None:
    contact = blank()
    values = {"firstname": "Ann", "email": "Ann@Example.com", "city": ""}
    update = apply_properties(contact, values, 100)
    assert update.changed == {"firstname", "email", "city"}
    snapshot = stored(contact)
    assert apply_properties(contact, values, 100).changed == set()
    assert apply_properties(contact, values, 100).changed == set()
    assert stored(contact) == snapshot
    assert len(contact.properties) == 3
    assert contact.email == "ann@example.com"


def test_the_same_value_later_is_not_a_change_but_moves_the_time() -> None:
    contact = blank()
    apply_properties(contact, {"firstname": "Ann"}, 100)
    assert apply_properties(contact, {"firstname": "Ann"}, 200).changed == set()
    # The later time now guards the value against a change from in between.
    assert apply_properties(contact, {"firstname": "Anna"}, 150).changed == set()
    assert stored(contact) == {"firstname": ("Ann", 200)}


def test_empty_string_is_stored_as_no_value() -> None:
    contact = blank()
    apply_properties(contact, {"city": "Lyon", "phone": ""}, 100)
    assert stored(contact)["phone"] == (None, 100)
    assert apply_properties(contact, {"city": ""}, 200).changed == {"city"}
    assert stored(contact)["city"] == (None, 200)
    # "" and None are the same value: no change.
    assert apply_properties(contact, {"city": None}, 300).changed == set()
    assert contact.properties["city"].value is None
    assert forms(contact)["city"] == (None, None)


def test_filter_forms_follow_the_value() -> None:
    contact = blank()
    apply_properties(contact, {"age": "42", "city": "LYON"}, 100)
    assert forms(contact) == {"age": ("42", 42.0), "city": ("lyon", None)}
    apply_properties(contact, {"age": "forty"}, 200)
    assert forms(contact)["age"] == ("forty", None)


def test_email_column_follows_the_email_property() -> None:
    contact = blank()
    apply_properties(contact, {"email": "  Ann.Lee@Example.COM "}, 100)
    assert contact.email == "ann.lee@example.com"
    apply_properties(contact, {"email": "old@example.com"}, 50)
    assert contact.email == "ann.lee@example.com"
    apply_properties(contact, {"email": "NEW@example.com"}, 200)
    assert contact.email == "new@example.com"
    apply_properties(contact, {"email": ""}, 300)
    assert contact.email is None


async def test_store_round_trip(session_factory: async_sessionmaker[AsyncSession]) -> None:
    async with session_factory() as session, session.begin():
        contact_id = await upsert_hubspot_contact(
            session, "501", {"email": "Zoe@Example.com", "firstname": "Zoe"}, 200
        )
    async with session_factory() as session, session.begin():
        # Out of order and repeated, in later transactions.
        await upsert_hubspot_contact(session, "501", {"firstname": "Zo", "lastname": "Ray"}, 100)
        await upsert_hubspot_contact(session, "501", {"email": "Zoe@Example.com"}, 200)
        await upsert_hubspot_contact(session, "501", {"city": ""}, 300)
    async with session_factory() as session:
        found = await find_by_hubspot_id(session, "501")
        assert found is not None and found.id == contact_id
        assert found.email == "zoe@example.com"
        assert found.property_values() == {
            "email": "Zoe@Example.com",
            "firstname": "Zoe",
            "lastname": "Ray",
            "city": None,
        }
        assert [c.id for c in await find_by_email(session, "ZOE@example.com")] == [contact_id]
    async with session_factory() as session, session.begin():
        await upsert_hubspot_contact(session, "501", {"email": "zoe.ray@example.com"}, 400)
    async with session_factory() as session:
        assert await find_by_email(session, "zoe@example.com") == []
        moved = await find_by_email(session, "Zoe.Ray@example.com")
        assert [c.id for c in moved] == [contact_id]
