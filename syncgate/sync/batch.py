"""A batch of contacts: loaded and locked in a few set queries, changed in memory, written back
in bulk with SQLAlchemy Core. Processing rounds, jobs and delivery settling all go through it.

Locks are taken in one order by every batch, so two workers never deadlock: the contacts (one
SELECT … FOR UPDATE in id order, then new ones inserted in HubSpot id order), their pending
deliveries, and last, when writing, the segments whose sizes move (in id order).
"""

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import ColumnElement, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from syncgate.db import among, copy_rows, insert_rows, update_rows
from syncgate.delivery.outbox import Outbox
from syncgate.models import table_of, utc_now
from syncgate.sync.contacts import COLUMNS, ContactState, StoredProperty, normalise_email
from syncgate.sync.decisions import DecisionLog
from syncgate.sync.models import Contact, ContactProperty
from syncgate.sync.segments import ActiveSegment, Memberships

_CONTACTS = table_of(Contact)
_PROPERTIES = table_of(ContactProperty)
_LOADED_NAMES = ("id", *COLUMNS)
_LOADED = tuple(_CONTACTS.c[name] for name in _LOADED_NAMES)
_LINK = COLUMNS.index("salesforce_id")


class ContactBatch:
    def __init__(self, segments: list[ActiveSegment]) -> None:
        self.contacts: list[ContactState] = []
        self.by_id: dict[int, ContactState] = {}
        self.by_hubspot_id: dict[str, ContactState] = {}
        self.by_salesforce_id: dict[str, ContactState] = {}
        self._by_email: dict[str, list[ContactState]] = {}
        self.memberships = Memberships(segments)
        self.outbox = Outbox()
        self.decisions = DecisionLog()
        self._with_properties = self._with_queued = True
        self._created: set[ContactState] = set()

    @classmethod
    async def load(
        cls,
        connection: AsyncConnection,
        segments: list[ActiveSegment],
        *,
        ids: Iterable[int] = (),
        hubspot_ids: Iterable[str] = (),
        salesforce_ids: Iterable[str] = (),
        emails: Iterable[str] = (),
        properties: bool = True,
        queued: bool = True,
    ) -> "ContactBatch":
        """The contacts with any of these ids or emails, locked, with their properties and
        memberships (unless `properties` is False) and queued deliveries (unless `queued` is)."""
        batch = cls(segments)
        batch._with_properties, batch._with_queued = properties, queued
        conditions: list[ColumnElement[bool]] = []
        for column, values in (
            (_CONTACTS.c.id, sorted(set(ids))),
            (_CONTACTS.c.hubspot_id, sorted(set(hubspot_ids))),
            (_CONTACTS.c.salesforce_id, sorted(set(salesforce_ids))),
            (_CONTACTS.c.email, sorted(set(emails))),
        ):
            if values:
                conditions.append(among(connection.dialect, column, values))
        if conditions:
            rows = await connection.execute(
                select(*_LOADED)
                .where(or_(*conditions))
                .order_by(_CONTACTS.c.id)  # one lock order for every worker: no deadlocks
                .with_for_update()
            )
            await batch._take(connection, _states(rows))
        return batch

    async def create_hubspot_contacts(
        self,
        connection: AsyncConnection,
        hubspot_ids: Iterable[str],
        emails: Mapping[str, str | None] | None = None,
    ) -> None:
        """Contacts for the HubSpot ids the batch does not hold yet (with their `emails` when
        known), inserted and locked now.

        Another worker inserting the same one first makes this insert wait for its commit and
        skip the row, which is then read and locked like the others.
        """
        missing = sorted(set(hubspot_ids) - self.by_hubspot_id.keys())
        if not missing:
            return
        now = utc_now()
        emails = emails or {}
        inserted = await insert_rows(
            connection,
            _CONTACTS,
            [
                {
                    "hubspot_id": h,
                    "email": emails.get(h),
                    "salesforce_values": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for h in missing
            ],
            conflict=["hubspot_id"],
            returning=["id", "hubspot_id", "email"],
        )
        # Just inserted: no properties, memberships or deliveries to read.
        fresh = [
            ContactState(id=row.id, hubspot_id=row.hubspot_id, email=row.email) for row in inserted
        ]
        await self._take(connection, fresh, fresh=True)
        raced = sorted(set(missing) - {c.hubspot_id for c in fresh})
        if raced:
            rows = await connection.execute(
                select(*_LOADED)
                .where(among(connection.dialect, _CONTACTS.c.hubspot_id, raced))
                .order_by(_CONTACTS.c.id)
                .with_for_update()
            )
            await self._take(connection, _states(rows))

    async def _take(
        self, connection: AsyncConnection, contacts: list[ContactState], *, fresh: bool = False
    ) -> None:
        if fresh:
            self._created.update(contacts)
            for contact in contacts:
                self.memberships.add(contact)
        else:
            await self._load_related(connection, contacts)
        for contact in contacts:
            contact.mark_saved()
            self.contacts.append(contact)
            self._index(contact)

    async def _load_related(
        self, connection: AsyncConnection, contacts: list[ContactState]
    ) -> None:
        if not contacts:
            return
        if self._with_properties:
            by_id = {contact.id: contact for contact in contacts}
            rows = await connection.execute(
                select(
                    _PROPERTIES.c.contact_id,
                    _PROPERTIES.c.name,
                    _PROPERTIES.c.value,
                    _PROPERTIES.c.changed_at_ms,
                ).where(among(connection.dialect, _PROPERTIES.c.contact_id, by_id))
            )
            for contact_id, name, value, changed_at_ms in rows:
                by_id[contact_id].properties[name] = StoredProperty(value, changed_at_ms)
            await self.memberships.load(connection, contacts)
        if self._with_queued:
            await self.outbox.load(connection, contacts)

    def _index(self, contact: ContactState) -> None:
        if contact.id is not None:
            self.by_id[contact.id] = contact
        if contact.hubspot_id is not None:
            self.by_hubspot_id[contact.hubspot_id] = contact
        if contact.salesforce_id is not None:
            self.by_salesforce_id[contact.salesforce_id] = contact
        if contact.email is not None:
            self._by_email.setdefault(contact.email, []).append(contact)

    def add(self, contact: ContactState) -> ContactState:
        """A contact created in memory (inserted by `write`)."""
        self.contacts.append(contact)
        self.memberships.add(contact)
        self._index(contact)
        return contact

    def with_email(self, email: str | None) -> list[ContactState]:
        return list(self._by_email.get(email, ())) if email is not None else []

    def email_changed(self, contact: ContactState, previous: str | None) -> None:
        if previous is not None and contact in self._by_email.get(previous, ()):
            self._by_email[previous].remove(contact)
        if contact.email is not None:
            self._by_email.setdefault(contact.email, []).append(contact)

    def relinked(self, contact: ContactState, previous: str | None) -> None:
        """Keep the Salesforce index right after the contact's link changed."""
        if previous is not None and self.by_salesforce_id.get(previous) is contact:
            del self.by_salesforce_id[previous]
        if contact.salesforce_id is not None:
            self.by_salesforce_id[contact.salesforce_id] = contact

    def move_link(self, source: ContactState, target: ContactState) -> None:
        """The Salesforce record `source` is linked to becomes `target`'s (a merge in HubSpot),
        with what the mirror knows of it."""
        target.salesforce_id, source.salesforce_id = source.salesforce_id, None
        target.salesforce_object = source.salesforce_object
        target.salesforce_values = source.salesforce_values
        target.salesforce_modified_ms = source.salesforce_modified_ms
        target.salesforce_echo_of = source.salesforce_echo_of
        self.relinked(source, target.salesforce_id)
        self.relinked(target, None)

    def hubspot_linked(self, contact: ContactState) -> None:
        if contact.hubspot_id is not None:
            self.by_hubspot_id[contact.hubspot_id] = contact

    def match_salesforce_record(self, record_id: str, email: str | None) -> ContactState | None:
        """Rule 6: by link first, then by email (case-insensitive); among contacts with the email,
        one known to HubSpot first, then the oldest."""
        linked = self.by_salesforce_id.get(record_id)
        normalised = normalise_email(email)
        if linked is not None or normalised is None:
            return linked
        candidates = [c for c in self._by_email.get(normalised, ()) if c.merged_into_id is None]
        if not candidates:
            return None
        return min(candidates, key=lambda c: (c.hubspot_id is None, c.id or 2**63))

    async def write(self, connection: AsyncConnection) -> None:
        """Store every change: contacts, properties, deliveries, decisions, then memberships."""
        await self._write_contacts(connection)
        # Properties of contacts this batch created cannot conflict with stored ones: copied in.
        rows: dict[bool, list[dict[str, object]]] = {True: [], False: []}
        for contact in self.contacts:
            if contact.changed_properties and contact.id is not None:
                rows[contact in self._created] += [
                    contact.properties[name].row(contact.id, name)
                    for name in sorted(contact.changed_properties)
                ]
        await copy_rows(connection, _PROPERTIES, rows[True])
        await insert_rows(
            connection,
            _PROPERTIES,
            rows[False],
            conflict=["contact_id", "name"],
            update_columns=["value", "value_folded", "value_number", "changed_at_ms"],
        )
        await self.outbox.write(connection)
        await self.decisions.write(connection)
        await self.memberships.write(connection)
        for contact in self.contacts:
            contact.mark_saved()
        self._created.clear()

    async def _write_contacts(self, connection: AsyncConnection) -> None:
        """Insert new contacts, update changed ones."""
        now = utc_now()
        new = [contact for contact in self.contacts if contact.saved is None]
        if new:
            inserted = await connection.execute(
                insert(_CONTACTS).returning(_CONTACTS.c.id, sort_by_parameter_order=True),
                [
                    dict(zip(COLUMNS, contact.columns(), strict=True))
                    | {"created_at": now, "updated_at": now}
                    for contact in new
                ],
            )
            for contact, (contact_id,) in zip(new, inserted, strict=True):
                contact.id = contact_id
                self.by_id[contact_id] = contact
            self._created.update(new)
        dirty = [c for c in self.contacts if c.saved is not None and c.saved != c.columns()]
        # A Salesforce id moving between contacts (a merge) is unique: free it first.
        released = [
            {"id": c.id, "salesforce_id": None}
            for c in dirty
            if c.saved is not None
            and c.saved[_LINK] is not None
            and c.saved[_LINK] != c.salesforce_id
        ]
        await update_rows(connection, _CONTACTS, released)
        await update_rows(
            connection,
            _CONTACTS,
            [
                {"id": contact.id, **dict(zip(COLUMNS, contact.columns(), strict=True))}
                | {"updated_at": now}
                for contact in sorted(dirty, key=lambda c: c.id or 0)
            ],
        )


def _states(rows: Iterable[Sequence[object]]) -> list[ContactState]:
    """ContactStates from rows of `_LOADED`."""
    return [ContactState(**dict(zip(_LOADED_NAMES, row, strict=True))) for row in rows]  # type: ignore[arg-type]
