"""Table tests of the HubSpot → Salesforce gate, one per sentence of CONTRACT §5."""

import pytest

from syncgate.sync.decide.hubspot_change import HubSpotChange, gate_hubspot_change
from syncgate.sync.decide.outcomes import Decision, Membership
from syncgate.sync.decide.values import same_value
from syncgate.sync.mapping import DEFAULT_MAPPINGS, Mapping
from syncgate.sync.models import SyncRule

MAPPINGS = [
    Mapping("email", "Email", "Email", SyncRule.TWO_WAY),
    Mapping("firstname", "FirstName", "FirstName", SyncRule.TWO_WAY),
    Mapping("company", "Company", None, SyncRule.TWO_WAY),
    Mapping("hs_lead_status", "Status", None, SyncRule.PREFER_SALESFORCE_UNLESS_BLANK),
    Mapping("rating", "Rating", None, SyncRule.ALWAYS_SALESFORCE),
    Mapping("notes", "Description", "Description", SyncRule.DONT_SYNC),
]
PROPS = {
    "email": "ada@example.com",
    "firstname": "Ada",
    "company": "Engines",
    "hs_lead_status": "NEW",
    "rating": "Hot",
    "notes": "private",
    "favourite_colour": "green",
}
NO_SEGMENT = Membership(inclusion_segment_id=None)
MEMBER = Membership(inclusion_segment_id=7, member=True)
JOINED = Membership(inclusion_segment_id=7, member=True, joined=True)
OUTSIDE = Membership(inclusion_segment_id=7, member=False)


def linked_change(changed: set[str], **overrides: object) -> HubSpotChange:
    values: dict[str, object] = {
        "changed": frozenset(changed),
        "properties": PROPS,
        "salesforce_object": "Lead",
        "linked": True,
        "salesforce_values": {"Email": "ada@example.com", "FirstName": "Old", "Company": "Engines"},
    }
    values.update(overrides)
    return HubSpotChange(**values)  # type: ignore[arg-type]


def test_rule_1_no_inclusion_segment_every_contact_may_sync() -> None:
    outcome = gate_hubspot_change(linked_change({"firstname"}), NO_SEGMENT, MAPPINGS)
    assert outcome.decision is Decision.FORWARDED
    assert outcome.values == {"firstname": "Ada"}


def test_rule_1_a_member_of_the_inclusion_segment_syncs_its_changes() -> None:
    outcome = gate_hubspot_change(linked_change({"firstname"}), MEMBER, MAPPINGS)
    assert (outcome.decision, outcome.values) == (Decision.FORWARDED, {"firstname": "Ada"})


def test_gate_contact_outside_the_inclusion_segment_is_skipped() -> None:
    outcome = gate_hubspot_change(linked_change({"firstname"}), OUTSIDE, MAPPINGS)
    assert outcome.decision is Decision.SKIPPED_NOT_IN_SEGMENT
    assert "7" in outcome.reason
    assert not outcome.queues_delivery


def test_rule_3_joining_the_inclusion_segment_syncs_every_mapped_property() -> None:
    outcome = gate_hubspot_change(linked_change({"company"}), JOINED, MAPPINGS)
    assert outcome.decision is Decision.FORWARDED
    # company already matches Salesforce; firstname differs; Status is blank there (prefer rule).
    assert outcome.values == {"firstname": "Ada", "hs_lead_status": "NEW"}
    assert "joined" in outcome.reason


def test_rule_3_without_joining_only_the_changed_property_is_sent() -> None:
    outcome = gate_hubspot_change(linked_change({"hs_lead_status"}), MEMBER, MAPPINGS)
    assert outcome.values == {"hs_lead_status": "NEW"}


def test_rule_6_unlinked_contact_without_email_cannot_be_matched() -> None:
    props = {**PROPS, "email": None}
    change = linked_change({"firstname"}, linked=False, properties=props, salesforce_values={})
    assert gate_hubspot_change(change, NO_SEGMENT, MAPPINGS).decision is Decision.IGNORED


def test_rule_7_a_record_to_create_gets_every_mapped_field() -> None:
    change = linked_change({"firstname"}, linked=False, salesforce_values={})
    outcome = gate_hubspot_change(change, NO_SEGMENT, MAPPINGS)
    assert outcome.decision is Decision.FORWARDED
    assert outcome.values == {
        "email": "ada@example.com",
        "firstname": "Ada",
        "company": "Engines",
        "hs_lead_status": "NEW",
    }


def test_rule_7_contact_object_leaves_out_lead_only_fields() -> None:
    change = linked_change(
        {"firstname"}, linked=False, salesforce_values={}, salesforce_object="Contact"
    )
    outcome = gate_hubspot_change(change, NO_SEGMENT, MAPPINGS)
    assert set(outcome.values) == {"email", "firstname"}


def test_rule_8_two_way_sends_a_changed_value() -> None:
    outcome = gate_hubspot_change(linked_change({"firstname"}), NO_SEGMENT, MAPPINGS)
    assert outcome.values == {"firstname": "Ada"}


def test_rule_8_two_way_propagates_a_deleted_value() -> None:
    props = {**PROPS, "firstname": None}
    outcome = gate_hubspot_change(
        linked_change({"firstname"}, properties=props), NO_SEGMENT, MAPPINGS
    )
    assert outcome.values == {"firstname": None}


def test_rule_8_prefer_salesforce_unless_blank_sends_only_while_salesforce_is_blank() -> None:
    blank = linked_change({"hs_lead_status"})
    assert gate_hubspot_change(blank, NO_SEGMENT, MAPPINGS).values == {"hs_lead_status": "NEW"}
    filled = linked_change(
        {"hs_lead_status"}, salesforce_values={"Email": "ada@example.com", "Status": "Working"}
    )
    outcome = gate_hubspot_change(filled, NO_SEGMENT, MAPPINGS)
    assert outcome.decision is Decision.SKIPPED_NO_CHANGE
    assert not outcome.queues_delivery


def test_rule_8_always_salesforce_never_goes_to_salesforce() -> None:
    outcome = gate_hubspot_change(linked_change({"rating"}), NO_SEGMENT, MAPPINGS)
    assert outcome.decision is Decision.SKIPPED_UNMAPPED


def test_rule_8_dont_sync_never_goes_to_salesforce() -> None:
    outcome = gate_hubspot_change(linked_change({"notes"}), NO_SEGMENT, MAPPINGS)
    assert outcome.decision is Decision.SKIPPED_UNMAPPED


def test_skipped_unmapped_when_only_unmapped_properties_changed() -> None:
    outcome = gate_hubspot_change(linked_change({"favourite_colour"}), NO_SEGMENT, MAPPINGS)
    assert outcome.decision is Decision.SKIPPED_UNMAPPED
    assert "favourite_colour" in outcome.reason


def test_skipped_no_change_when_salesforce_already_has_the_value() -> None:
    outcome = gate_hubspot_change(linked_change({"company"}), NO_SEGMENT, MAPPINGS)
    assert outcome.decision is Decision.SKIPPED_NO_CHANGE


def test_skipped_no_change_absorbs_the_echo_of_our_own_write() -> None:
    # The mirror saw no new value (our write came back): nothing changed.
    outcome = gate_hubspot_change(linked_change(set()), NO_SEGMENT, MAPPINGS)
    assert outcome.decision is Decision.SKIPPED_NO_CHANGE


def test_skipped_stale_when_the_change_is_older_than_what_was_applied() -> None:
    outcome = gate_hubspot_change(linked_change(set(), stale=True), MEMBER, MAPPINGS)
    assert outcome.decision is Decision.SKIPPED_STALE


def test_full_sync_sends_every_differing_mapped_property() -> None:
    outcome = gate_hubspot_change(linked_change(set(), full=True), MEMBER, MAPPINGS)
    assert outcome.values == {"firstname": "Ada", "hs_lead_status": "NEW"}


def test_default_mappings_map_email_two_way() -> None:
    email = next(m for m in DEFAULT_MAPPINGS if m.hubspot_property == "email")
    assert (email.lead_field, email.contact_field, email.rule) == (
        "Email",
        "Email",
        SyncRule.TWO_WAY,
    )


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        ("5", 5, True),
        ("5.0", "5", True),
        ("", None, True),
        ("true", True, True),
        ("True", "false", False),
        ("Ada", "ada", False),
        (" Ada ", "Ada", True),
        ("abc", "abd", False),
    ],
)
def test_values_compare_across_platform_types(left: object, right: object, same: bool) -> None:
    assert same_value(left, right) is same
