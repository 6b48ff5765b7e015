"""Table tests of the Salesforce → HubSpot gate, one per sentence of CONTRACT §5."""

from syncgate.sync.decide.outcomes import Decision, Membership
from syncgate.sync.decide.salesforce_change import SalesforceChange, gate_salesforce_change
from syncgate.sync.decide.values import NOT_PROVIDED
from syncgate.sync.mapping import Mapping
from syncgate.sync.models import SyncRule

MAPPINGS = [
    Mapping("email", "Email", "Email", SyncRule.TWO_WAY),
    Mapping("firstname", "FirstName", "FirstName", SyncRule.TWO_WAY),
    Mapping("company", "Company", None, SyncRule.TWO_WAY),
    Mapping("hs_lead_status", "Status", None, SyncRule.PREFER_SALESFORCE_UNLESS_BLANK),
    Mapping("rating", "Rating", None, SyncRule.ALWAYS_SALESFORCE),
    Mapping("notes", "Description", "Description", SyncRule.DONT_SYNC),
]
FIELDS = {
    "Id": "00Q5g00003QbnlGEAR",
    "Email": "ada@example.com",
    "FirstName": "Ada",
    "Company": "Engines",
    "Status": "Working",
    "Rating": "Hot",
    "Description": "private",
    "LastModifiedDate": "2026-11-28T10:00:00.000Z",
}
MODIFIED = 1_764_324_000_000  # 2026-11-28T10:00:00Z
NO_SEGMENT = Membership(None)
MEMBER = Membership(7, member=True)
OUTSIDE = Membership(7, member=False)


def change(**overrides: object) -> SalesforceChange:
    values: dict[str, object] = {
        "object_type": "Lead",
        "fields": FIELDS,
        "previous": {**FIELDS, "FirstName": "Old"},
        "hubspot_properties": {
            "email": "ada@example.com",
            "firstname": "Old",
            "company": "Engines",
        },
        "hubspot_changed_at": {"firstname": MODIFIED - 60_000},
        "modified_ms": MODIFIED,
        "creation": False,
        "hubspot_contact_known": True,
        "create_allowed": True,
    }
    values.update(overrides)
    return SalesforceChange(**values)  # type: ignore[arg-type]


def test_rule_4_update_is_gated_on_hubspot_side_membership() -> None:
    assert (
        gate_salesforce_change(change(), OUTSIDE, MAPPINGS).decision
        is Decision.SKIPPED_NOT_IN_SEGMENT
    )
    outcome = gate_salesforce_change(change(), MEMBER, MAPPINGS)
    assert (outcome.decision, outcome.values) == (Decision.FORWARDED, {"firstname": "Ada"})


def test_rule_1_without_inclusion_segment_every_update_may_sync() -> None:
    assert gate_salesforce_change(change(), NO_SEGMENT, MAPPINGS).decision is Decision.FORWARDED


def test_rule_5_new_lead_outside_the_segment_creates_the_contact_with_all_mapped_fields() -> None:
    new = change(creation=True, previous=None, hubspot_contact_known=False, hubspot_properties={})
    outcome = gate_salesforce_change(new, OUTSIDE, MAPPINGS)
    assert outcome.decision is Decision.CREATED_OUTSIDE_SEGMENT
    assert outcome.values == {
        "email": "ada@example.com",
        "firstname": "Ada",
        "company": "Engines",
        "hs_lead_status": "Working",
        "rating": "Hot",
    }


def test_rule_5_new_record_syncs_the_existing_hubspot_contact_with_that_email() -> None:
    new = change(creation=True, previous=None)
    outcome = gate_salesforce_change(new, OUTSIDE, MAPPINGS)
    assert outcome.decision is Decision.CREATED_OUTSIDE_SEGMENT
    assert outcome.values["firstname"] == "Ada"


def test_rule_5_inside_the_segment_a_new_lead_is_simply_forwarded() -> None:
    new = change(creation=True, previous=None, hubspot_contact_known=False, hubspot_properties={})
    assert gate_salesforce_change(new, MEMBER, MAPPINGS).decision is Decision.FORWARDED


def test_rule_5_setting_off_and_no_matching_contact_creates_nothing() -> None:
    new = change(creation=True, previous=None, hubspot_contact_known=False, create_allowed=False)
    outcome = gate_salesforce_change(new, NO_SEGMENT, MAPPINGS)
    assert outcome.decision is Decision.IGNORED
    assert "off" in outcome.reason


def test_rule_5_later_updates_are_gated_again() -> None:
    later = change(creation=False)
    assert (
        gate_salesforce_change(later, OUTSIDE, MAPPINGS).decision is Decision.SKIPPED_NOT_IN_SEGMENT
    )


def test_rule_5_echo_of_a_record_syncgate_created_is_skipped_no_change() -> None:
    ours = {**FIELDS, "Company": NOT_PROVIDED, "FirstName": "Old"}
    echo = change(
        creation=True,
        fields=ours,
        previous=ours,
        hubspot_properties={"email": "ada@example.com", "firstname": "Old"},
    )
    outcome = gate_salesforce_change(echo, NO_SEGMENT, MAPPINGS)
    assert outcome.decision is Decision.SKIPPED_NO_CHANGE, outcome


def test_rule_8_two_way_latest_value_wins() -> None:
    hubspot_newer = change(hubspot_changed_at={"firstname": MODIFIED + 1})
    assert (
        gate_salesforce_change(hubspot_newer, NO_SEGMENT, MAPPINGS).decision
        is Decision.SKIPPED_NO_CHANGE
    )


def test_rule_8_two_way_propagates_a_deleted_value() -> None:
    cleared = change(
        fields={**FIELDS, "FirstName": None},
        previous=FIELDS,
        hubspot_properties={"firstname": "Ada"},
    )
    assert gate_salesforce_change(cleared, NO_SEGMENT, MAPPINGS).values == {"firstname": None}


def test_rule_8_prefer_salesforce_and_always_salesforce_overwrite_hubspot() -> None:
    moved = {**FIELDS, "Status": "Qualified", "Rating": "Cold"}
    outcome = gate_salesforce_change(
        change(fields=moved, previous=FIELDS, hubspot_changed_at={"hs_lead_status": MODIFIED + 5}),
        NO_SEGMENT,
        MAPPINGS,
    )
    assert outcome.values == {"hs_lead_status": "Qualified", "rating": "Cold"}


def test_rule_8_dont_sync_never_goes_to_hubspot() -> None:
    moved = {**FIELDS, "Description": "changed"}
    outcome = gate_salesforce_change(change(fields=moved, previous=FIELDS), NO_SEGMENT, MAPPINGS)
    assert outcome.decision is Decision.SKIPPED_UNMAPPED


def test_unchanged_salesforce_fields_never_overwrite_hubspot() -> None:
    # HubSpot has a newer first name that is still on its way to Salesforce.
    same = change(previous=FIELDS, hubspot_properties={"firstname": "Newer in HubSpot"})
    assert gate_salesforce_change(same, NO_SEGMENT, MAPPINGS).decision is Decision.SKIPPED_NO_CHANGE


def test_skipped_stale_when_older_than_the_applied_version() -> None:
    assert (
        gate_salesforce_change(change(stale=True), MEMBER, MAPPINGS).decision
        is Decision.SKIPPED_STALE
    )


def test_new_record_without_email_cannot_create_a_contact() -> None:
    nameless = {k: v for k, v in FIELDS.items() if k != "Email"}
    new = change(creation=True, fields=nameless, previous=None, hubspot_contact_known=False)
    assert gate_salesforce_change(new, NO_SEGMENT, MAPPINGS).decision is Decision.IGNORED


def test_rule_5_echo_of_our_write_is_named_whatever_unmapped_fields_it_carries() -> None:
    # Delivery 17 wrote the record; Salesforce sends it back with fields syncgate never saw.
    echo = change(
        previous=FIELDS,
        fields={**FIELDS, "LeadSource": "Web", "OwnerId": "0055g00000AbcdEAAR"},
        echo_candidates=[(17, {})],
    )
    outcome = gate_salesforce_change(echo, OUTSIDE, MAPPINGS)
    assert outcome.decision is Decision.SKIPPED_NO_CHANGE
    assert "echo of delivery 17" in outcome.reason


def test_rule_5_echo_of_a_write_still_in_flight_is_named() -> None:
    # The create of delivery 9 has not been settled yet: its values are all the store knows.
    written = {"Email": "ada@example.com", "FirstName": "Ada", "Company": NOT_PROVIDED}
    echo = change(
        creation=True,
        previous=None,
        fields={
            **FIELDS,
            "Company": NOT_PROVIDED,
            "Status": None,
            "Rating": None,
            "Description": None,
        },
        hubspot_properties={"email": "ada@example.com", "firstname": "Ada"},
        echo_candidates=[(9, written)],
    )
    outcome = gate_salesforce_change(echo, NO_SEGMENT, MAPPINGS)
    assert (outcome.decision, outcome.reason.split(":")[0]) == (
        Decision.SKIPPED_NO_CHANGE,
        "echo of delivery 9",
    )


def test_a_change_after_our_write_is_no_echo() -> None:
    moved = change(
        previous=FIELDS,
        fields={**FIELDS, "FirstName": "Adele"},
        echo_candidates=[(17, {})],
    )
    outcome = gate_salesforce_change(moved, NO_SEGMENT, MAPPINGS)
    assert (outcome.decision, outcome.values) == (Decision.FORWARDED, {"firstname": "Adele"})
