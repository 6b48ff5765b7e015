"""Applying one event of a round, in memory: update the mirror, re-evaluate the contact's
segments, decide (`sync.decide`), record the decision and queue what it forwards."""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from syncgate.delivery.models import Target
from syncgate.inbox.store import salesforce_time_ms
from syncgate.platforms.hubspot.events import HubSpotEvent
from syncgate.processing.claim import RoundContext, RoundEvent, SalesforceNotification
from syncgate.sync.batch import ContactBatch
from syncgate.sync.contacts import (
    ContactState,
    PropertyUpdate,
    apply_properties,
    apply_read,
    link_record,
    normalise_email,
)
from syncgate.sync.decide import hubspot_change as from_hubspot
from syncgate.sync.decide import salesforce_change as from_salesforce
from syncgate.sync.decide.outcomes import Direction, Membership, Outcome
from syncgate.sync.mapping import to_salesforce_fields

HUBSPOT_TO_SALESFORCE = Direction.HUBSPOT_TO_SALESFORCE
SALESFORCE_TO_HUBSPOT = Direction.SALESFORCE_TO_HUBSPOT
READ_FAILED = "reading the contact from HubSpot failed"


class Postponed(Exception):
    """The event waits for a later round (a HubSpot read it needs failed)."""


@dataclass
class Round:
    """A round's events applied to its batch of contacts."""

    context: RoundContext
    batch: ContactBatch
    # Per HubSpot object key, the latest restore already processed (deletions older lose).
    restored_at: dict[str, int] = field(default_factory=dict)
    read_applied: set[str] = field(default_factory=set)

    def decide(
        self,
        direction: Direction,
        outcome: Outcome,
        contact: ContactState | None,
        event: RoundEvent,
    ) -> None:
        self.batch.decisions.add(direction, outcome, contact, event.source_event)

    def apply(self, event: RoundEvent) -> None:
        """Apply one event; raises `Postponed` when it must wait."""
        if event.hubspot is not None:
            self._hubspot(event, event.hubspot)
        elif event.salesforce is not None:
            self._salesforce(event, event.salesforce)
        else:
            raise ValueError(f"unreadable payload: {event.unparsable}")

    # -- HubSpot ------------------------------------------------------------------------------

    def _hubspot(self, event: RoundEvent, parsed: HubSpotEvent) -> None:
        context, batch = self.context, self.batch
        hubspot_id = str(parsed.object_id)
        portal = context.config.hubspot_portal_id
        if portal is not None and parsed.portal_id != portal:
            outcome = from_hubspot.from_other_portal(parsed.portal_id, portal)
            self.decide(HUBSPOT_TO_SALESFORCE, outcome, None, event)
            return
        kind = parsed.subscription_type
        if kind == "contact.propertyChange" and parsed.property_name:
            if hubspot_id in context.unreadable:
                raise Postponed(READ_FAILED)
            contact = batch.by_hubspot_id[hubspot_id]
            if contact.hubspot_deleted_at is not None:
                outcome = from_hubspot.deleted_contact_changed()
                self.decide(HUBSPOT_TO_SALESFORCE, outcome, contact, event)
                return
            # First sight: what HubSpot has (a contact from before syncgate, or never
            # backfilled), then the change itself.
            changed = self._read(contact, 0)
            update = self._properties(
                contact, {parsed.property_name: parsed.property_value}, parsed.occurred_at
            )
            changed |= update.changed
            self._gate(event, contact, frozenset(changed), stale=bool(update.stale) and not changed)
        elif kind == "contact.creation":
            self._creation(event, hubspot_id)
        elif kind in ("contact.deletion", "contact.privacyDeletion"):
            deleted = batch.by_hubspot_id.get(hubspot_id)
            # Events of separate webhook calls arrive in any order: a restore that happened after
            # this deletion may have been processed before it.
            restored_since = self.restored_at.get(event.object_key, -1) > parsed.occurred_at
            if deleted is not None and not restored_since:
                deleted.hubspot_deleted_at = _moment(parsed.occurred_at)
            privacy = kind == "contact.privacyDeletion"
            outcome = from_hubspot.deleted(privacy=privacy, restored_since=restored_since)
            self.decide(HUBSPOT_TO_SALESFORCE, outcome, deleted, event)
        elif kind == "contact.restore":
            restored = batch.by_hubspot_id.get(hubspot_id)
            # Only a restore newer than the deletion undoes it (they may arrive out of order).
            deleted_at = restored.hubspot_deleted_at if restored is not None else None
            if restored is not None and deleted_at and deleted_at <= _moment(parsed.occurred_at):
                restored.hubspot_deleted_at = None
            previous = self.restored_at.get(event.object_key, -1)
            self.restored_at[event.object_key] = max(previous, parsed.occurred_at)
            self.decide(HUBSPOT_TO_SALESFORCE, from_hubspot.restored(), restored, event)
        elif kind == "contact.merge":
            self._merge(event, parsed)
        else:
            outcome = from_hubspot.unsupported_event(kind)
            self.decide(HUBSPOT_TO_SALESFORCE, outcome, None, event)

    def _creation(self, event: RoundEvent, hubspot_id: str) -> None:
        context, batch = self.context, self.batch
        if hubspot_id in context.unreadable:
            raise Postponed(READ_FAILED)
        if context.read_error is not None:
            outcome = from_hubspot.creation_unreadable(context.read_error)
            self.decide(HUBSPOT_TO_SALESFORCE, outcome, batch.by_hubspot_id[hubspot_id], event)
            return
        if context.reads.get(hubspot_id) is None:
            gone = batch.by_hubspot_id.get(hubspot_id)
            self.decide(HUBSPOT_TO_SALESFORCE, from_hubspot.creation_gone(), gone, event)
            return
        contact = batch.by_hubspot_id[hubspot_id]
        self.read_applied.discard(hubspot_id)  # a creation's values are at least its own age
        changed = self._read(contact, event.occurred_at_ms)
        self._gate(event, contact, frozenset(changed), full=True)

    def _read(self, contact: ContactState, at_least_ms: int) -> set[str]:
        """Apply what the round read from HubSpot for the contact, once per round."""
        hubspot_id = contact.hubspot_id or ""
        read = self.context.reads.get(hubspot_id)
        if read is None or hubspot_id in self.read_applied:
            return set()
        self.read_applied.add(hubspot_id)
        at = max(read.updated_at_ms, at_least_ms)
        return set(self._properties(contact, read.properties, at, read=True).changed)

    def _properties(
        self, contact: ContactState, values: dict[str, str | None], at: int, *, read: bool = False
    ) -> PropertyUpdate:
        email = contact.email
        update = (apply_read if read else apply_properties)(contact, values, at)
        if contact.email != email:
            self.batch.email_changed(contact, email)
        return update

    def _gate(
        self,
        event: RoundEvent,
        contact: ContactState,
        changed: frozenset[str],
        *,
        stale: bool = False,
        full: bool = False,
    ) -> None:
        context, batch = self.context, self.batch
        values = contact.property_values()
        before, after = batch.memberships.refresh(contact, values)
        inclusion = context.inclusion_segment_id
        member = inclusion in after
        membership = Membership(inclusion, member=member, joined=member and inclusion not in before)
        change = from_hubspot.hubspot_change(
            contact,
            context.mappings,
            new_contacts_as=context.new_contacts_as,
            changed=changed,
            stale=stale,
            full=full,
            queued=batch.outbox.queued_salesforce_values(contact),
            properties=values,
        )
        outcome = from_hubspot.gate_hubspot_change(change, membership, context.mappings)
        self.decide(HUBSPOT_TO_SALESFORCE, outcome, contact, event)
        if outcome.queues_delivery:
            batch.outbox.enqueue(
                Target.SALESFORCE, contact, outcome.values, event.received_at, event.source_event
            )

    def _merge(self, event: RoundEvent, parsed: HubSpotEvent) -> None:
        """The surviving contact keeps (or takes over) the Salesforce link of the merged ones."""
        batch = self.batch
        survivor_id = merge_survivor(parsed)
        survivor = batch.by_hubspot_id[survivor_id]
        for merged_id in sorted(merged_away(parsed)):
            merged = batch.by_hubspot_id.get(merged_id)
            if merged is None:
                continue
            if survivor.salesforce_id is None and merged.salesforce_id is not None:
                batch.move_link(merged, survivor)
                batch.outbox.hand_over(merged, survivor)
            merged.merged_into_id = survivor.id
            merged.hubspot_deleted_at = _moment(parsed.occurred_at)
        self.decide(HUBSPOT_TO_SALESFORCE, from_hubspot.merged(survivor_id), survivor, event)

    # -- Salesforce ---------------------------------------------------------------------------

    def _salesforce(self, event: RoundEvent, notification: SalesforceNotification) -> None:
        context, batch = self.context, self.batch
        object_type, record_id, fields = (
            notification.object_type,
            notification.record_id,
            notification.fields,
        )
        if object_type not in from_salesforce.SUPPORTED_OBJECTS:
            outcome = from_salesforce.unsupported_object(object_type)
            self.decide(SALESFORCE_TO_HUBSPOT, outcome, None, event)
            return
        if fields.get("IsConverted") == "true":
            self.decide(SALESFORCE_TO_HUBSPOT, from_salesforce.converted_lead(), None, event)
            return
        modified_ms = salesforce_time_ms(fields.get("LastModifiedDate")) or event.occurred_at_ms
        contact = batch.match_salesforce_record(record_id, fields.get("Email"))
        if contact is not None and contact.hubspot_deleted_at is not None:
            outcome = from_salesforce.hubspot_contact_deleted()
            self.decide(SALESFORCE_TO_HUBSPOT, outcome, contact, event)
            return
        echoes: list[tuple[int, dict[str, object]]] = []
        if contact is not None:
            if contact.salesforce_id == record_id and contact.salesforce_echo_of is not None:
                echoes.append((contact.salesforce_echo_of, {}))
            for delivery_id, values in batch.outbox.in_flight_to_salesforce(contact):
                written = to_salesforce_fields(values, object_type, context.mappings)
                echoes.append((delivery_id, written))
        create_allowed = (
            context.create_from_leads if object_type == "Lead" else context.create_from_contacts
        )
        change = from_salesforce.salesforce_change(
            contact,
            object_type=object_type,
            record_id=record_id,
            fields=fields,
            modified_ms=modified_ms,
            create_allowed=create_allowed,
            echo_candidates=echoes,
        )
        # Rule 4: membership is evaluated on the HubSpot side, before these values are applied.
        inclusion = context.inclusion_segment_id
        member = contact is not None and batch.memberships.is_member(contact, inclusion)
        outcome = from_salesforce.gate_salesforce_change(
            change, Membership(inclusion, member=member), context.mappings
        )
        if not change.stale and (contact is not None or outcome.queues_delivery):
            if contact is None:
                contact = batch.add(ContactState(email=normalise_email(fields.get("Email"))))
            previous = contact.salesforce_id
            if link_record(contact, object_type, record_id, modified_ms):
                contact.salesforce_values = {**contact.salesforce_values, **fields}
                contact.salesforce_modified_ms = max(
                    modified_ms, contact.salesforce_modified_ms or 0
                )
                contact.salesforce_echo_of = None  # a notification has confirmed the values
            batch.relinked(contact, previous)
        self.decide(SALESFORCE_TO_HUBSPOT, outcome, contact, event)
        if outcome.queues_delivery and contact is not None:
            batch.outbox.enqueue(
                Target.HUBSPOT, contact, outcome.values, event.received_at, event.source_event
            )


def merge_survivor(parsed: HubSpotEvent) -> str:
    return str(parsed.new_object_id or parsed.primary_object_id or parsed.object_id)


def merged_away(parsed: HubSpotEvent) -> set[str]:
    survivor = merge_survivor(parsed)
    merged = {str(i) for i in (parsed.merged_object_ids or [])}
    if parsed.primary_object_id is not None:
        merged.add(str(parsed.primary_object_id))
    return merged - {survivor}


def _moment(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)
