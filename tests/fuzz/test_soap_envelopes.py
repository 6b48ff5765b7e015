"""Hostile Salesforce Outbound Messages (CONTRACT.md §4): always a SOAP answer, never a 5xx, and
whatever is accepted is processed to `done` or `failed` without breaking the store."""

import re
from typing import TypeVar
from xml.sax.saxutils import escape, quoteattr

import httpx
import pytest
from defusedxml.ElementTree import fromstring
from fuzz.harness import SALESFORCE_ORG_ID, SALESFORCE_TOKEN, Intake
from hypothesis import (
    HealthCheck,
    currently_in_test_context,
    event,
    example,
    given,
    settings,
)
from hypothesis import strategies as st

from syncgate.inbox.models import InboxStatus
from syncgate.platforms.salesforce.outbound_message import (
    ACK_RESPONSE,
    ENTERPRISE_SOBJECT_NS,
    MAX_NOTIFICATIONS,
    OUTBOUND_NS,
    SOAP_ENV_NS,
)

XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
T = TypeVar("T")

FUZZ_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

salesforce_ids = st.from_regex(r"[A-Za-z0-9]{15}([A-Za-z0-9]{3})?", fullmatch=True)
# A few records, so notifications meet records (and contacts) that earlier ones created.
record_ids = st.one_of(
    st.sampled_from(["00Q5e000001AbCd", "00Q5e000001AbCdEAA", "0035e000002XyZwAAC"]),
    salesforce_ids,
)
# Text XML can carry (any code point but controls, surrogates and U+FFFE/U+FFFF) ...
xml_texts = st.one_of(
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
        | st.sampled_from("\t\n\r"),
        max_size=40,
    ),
    st.sampled_from(
        ["", " ", "true", "false", "ada@example.com", "ADA@EXAMPLE.COM ", "\u202e", "😀", "]]>"]
    ),
    st.builds(lambda unit, n: unit * n, st.sampled_from(["x", "é", "😀"]), st.integers(256, 5000)),
)
# ... and any text at all, which may make the document malformed (400).
any_texts = st.text(max_size=20) | xml_texts
dates = st.one_of(
    st.sampled_from(
        [
            "2024-05-06T07:08:09.000Z",
            "2024-05-06T07:08:09Z",
            "0001-01-01T00:00:00.000Z",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59.999Z",
            "9999-12-31T23:59:59-14:00",
            "2024-02-30T00:00:00Z",
            "1e400",
        ]
    ),
    st.datetimes().map(lambda moment: moment.isoformat()),
    xml_texts,
)
ncnames = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,30}", fullmatch=True)
KNOWN_FIELDS = {
    "Email": st.one_of(
        st.sampled_from(["ada@example.com", "Ada@Example.com", "bob@example.com"]),
        xml_texts,
        st.builds(lambda n: "a" * n + "@example.com", st.integers(300, 2000)),
    ),
    "FirstName": xml_texts,
    "LastName": xml_texts,
    "Company": xml_texts,
    "Phone": xml_texts,
    "IsConverted": st.sampled_from(["true", "false", "1", ""]),
    "CreatedDate": dates,
    "LastModifiedDate": dates,
}


def pick(
    draw: st.DrawFn, hostile: bool, valid: st.SearchStrategy[T], bad: st.SearchStrategy[T]
) -> T:
    """A valid value, or, in a hostile message, sometimes a bad one."""
    if hostile and draw(st.integers(0, 3)) == 0:
        return draw(bad)
    return draw(valid)


@st.composite
def field_elements(draw: st.DrawFn, hostile: bool) -> str:
    """The fields of an sObject: `Id`, known fields and random ones, some of them nil."""
    fields: dict[str, str | None] = {}
    if pick(draw, hostile, st.just(True), st.booleans()):
        fields["Id"] = pick(draw, hostile, record_ids, any_texts)
    for name, values in KNOWN_FIELDS.items():
        if draw(st.booleans()):
            fields[name] = draw(st.none() | values)
    for name in draw(st.lists(ncnames, max_size=3)):
        fields[name] = draw(st.none() | xml_texts)
    prefix = pick(draw, hostile, st.sampled_from(["sf:", ""]), st.just("unbound:"))
    parts = []
    for name, value in fields.items():
        if value is None:
            parts.append(f'<{prefix}{name} xsi:nil="true"/>')
        else:
            text = pick(draw, hostile, st.just(value), any_texts)
            parts.append(f"<{prefix}{name}>{escape(text)}</{prefix}{name}>")
    if pick(draw, hostile, st.just(False), st.booleans()):
        parts.append(f"<{prefix}Nested><{prefix}Inner>x</{prefix}Inner></{prefix}Nested>")
    return "".join(parts)


@st.composite
def notification_elements(draw: st.DrawFn, hostile: bool) -> str:
    object_type = pick(
        draw,
        hostile,
        st.sampled_from(["sf:Lead", "sf:Contact", "sf:Account", "Lead"]),
        st.sampled_from(["x:Lead", "sf:", "sf:" + "L" * 70]) | st.builds("sf:{}".format, ncnames),
    )
    type_attribute = pick(
        draw, hostile, st.just(f" xsi:type={quoteattr(object_type)}"), st.just("")
    )
    sobject_ns = pick(
        draw, hostile, st.just(ENTERPRISE_SOBJECT_NS), st.sampled_from(["urn:wrong", ""])
    )
    notification_id = pick(draw, hostile, salesforce_ids, any_texts)
    return (
        f"<Notification><Id>{escape(notification_id)}</Id>"
        f"<sObject{type_attribute} xmlns:sf={quoteattr(sobject_ns)}>"
        f"{draw(field_elements(hostile))}</sObject></Notification>"
    )


@st.composite
def envelopes(draw: st.DrawFn, *, utf8_only: bool = False) -> bytes:
    hostile = draw(st.integers(0, 2)) == 0
    envelope_ns = pick(
        draw, hostile, st.just(SOAP_ENV_NS), st.just("http://www.w3.org/2003/05/soap-envelope")
    )
    outbound_ns = pick(
        draw,
        hostile,
        st.just(OUTBOUND_NS),
        st.sampled_from(["http://soap.sforce.com/2005/09/inbound", ""]),
    )
    count = pick(
        draw,
        hostile,
        st.integers(1, 4),
        st.sampled_from([0, MAX_NOTIFICATIONS, MAX_NOTIFICATIONS + 1]),
    )
    if count > 4:
        # Copies of one notification under distinct ids (drawing a hundred ones is slow).
        template = draw(notification_elements(hostile))
        notifications = "".join(
            re.sub(r"<Id>[^<]*</Id>", f"<Id>04l5e{n:013d}</Id>", template, count=1)
            for n in range(count)
        )
    else:
        notifications = "".join(draw(notification_elements(hostile)) for _ in range(count))
    singletons = "".join(
        f"<{name}>{escape(draw(values))}</{name}>"
        for name, values in [
            ("ActionId", salesforce_ids | xml_texts),
            ("SessionId", xml_texts),
            ("EnterpriseUrl", xml_texts),
            ("PartnerUrl", xml_texts),
        ]
        if draw(st.booleans())
    )
    # Drawn apart from `hostile`: a well-formed message from another org gets 403.
    org = [
        SALESFORCE_ORG_ID,
        SALESFORCE_ORG_ID[:15],
        SALESFORCE_ORG_ID[:15] + "zzz",
        SALESFORCE_ORG_ID,
        SALESFORCE_ORG_ID[:15],
        None,
        "",
        SALESFORCE_ORG_ID[:14],
        "00D000000000001",  # 403
        SALESFORCE_ORG_ID.lower(),  # 403
    ][draw(st.integers(0, 9))]
    org_element = "" if org is None else f"<OrganizationId>{escape(org)}</OrganizationId>"
    document = (
        f'<soapenv:Envelope xmlns:soapenv="{envelope_ns}" xmlns:xsi="{XSI_NS}">'
        f"<soapenv:Body><notifications xmlns={quoteattr(outbound_ns)}>"
        f"{org_element}{singletons}{notifications}"
        "</notifications></soapenv:Body></soapenv:Envelope>"
    )
    if utf8_only:
        return document.encode()
    declaration, encoding = pick(
        draw,
        hostile,
        st.sampled_from(
            [
                ("", "utf-8"),
                ('<?xml version="1.0" encoding="UTF-8"?>\n', "utf-8"),
                ('<?xml version="1.0" encoding="UTF-16"?>\n', "utf-16"),
                ('<?xml version="1.0" encoding="ISO-8859-1"?>\n', "latin-1"),
            ]
        ),
        st.sampled_from(
            [
                ('<?xml version="1.0" encoding="UTF-16"?>\n', "utf-8"),
                ('<?xml version="1.1"?>\n', "utf-8"),
                ("", "latin-1"),
                ("", "utf-16-be"),
                ('<?xml version="1.0" encoding="no-such-codec"?>\n', "utf-8"),
            ]
        ),
    )
    return (declaration + document).encode(encoding, errors="replace")


NOT_XML = [
    b"<a>&undefined;</a>",
    b"<a>&#0;</a>",
    b"<" + b"a>" * 10_000,
    b"<a>" * 5_000 + b"</a>" * 5_000,
    b"\xef\xbb\xbf\xff\xfe<a/>",
]
# Document type declarations, each refused (400) whatever follows.
DTDS = [
    b'<!DOCTYPE soapenv:Envelope [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>',
    b'<!DOCTYPE soapenv:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    b'<!DOCTYPE soapenv:Envelope SYSTEM "http://example.com/x.dtd">',
    b'<!DOCTYPE soapenv:Envelope [<!ENTITY % p SYSTEM "http://example.com/p"> %p;]>',
    b"<!DOCTYPE soapenv:Envelope [<!ELEMENT soapenv:Envelope ANY>]>",
    b"<!DOCTYPE soapenv:Envelope>",
]


@st.composite
def hostile_bodies(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return draw(st.binary(max_size=300))
    if choice == 1:
        body = draw(envelopes())
        return body[: draw(st.integers(0, len(body)))]  # truncated
    return draw(st.sampled_from(NOT_XML))


def _with_dtd(envelope: bytes, dtd: bytes, entity: bool) -> bytes:
    """The envelope (UTF-8, without XML declaration) behind a DTD, maybe using an entity."""
    if entity:
        envelope = envelope.replace(b"<Notification>", b"<Notification>&lol;&xxe;", 1)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + dtd + b"\n" + envelope


def _assert_soap_answer(response: httpx.Response) -> None:
    assert response.status_code in (200, 400, 401, 403, 413), (response.status_code, response.text)
    assert response.headers["content-type"].split(";")[0].strip() == "text/xml"
    if response.status_code == 200:
        assert response.content == ACK_RESPONSE
        return
    root = fromstring(response.content)
    fault = root.find(f"{{{SOAP_ENV_NS}}}Body/{{{SOAP_ENV_NS}}}Fault")
    assert fault is not None, response.text
    assert fault.findtext("faultcode") == "soapenv:Client", response.text
    assert (fault.findtext("faultstring") or "").strip(), response.text


async def _post_and_process(intake: Intake, body: bytes, token: str | None) -> int:
    response = await intake.post_salesforce(body, token)
    if currently_in_test_context():
        event(f"HTTP {response.status_code}")
    _assert_soap_answer(response)
    if token != SALESFORCE_TOKEN:
        assert response.status_code == 401
    await intake.process_inbox()
    statuses = await intake.inbox_statuses()
    assert statuses[InboxStatus.PENDING] == 0, statuses
    assert set(statuses) <= {InboxStatus.DONE, InboxStatus.FAILED}, statuses
    assert await intake.failures() == []
    await intake.assert_store_readable()
    return response.status_code


def _lead_message(fields: str) -> bytes:
    return (
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}" xmlns:xsi="{XSI_NS}"><soapenv:Body>'
        f'<notifications xmlns="{OUTBOUND_NS}">'
        f"<OrganizationId>{SALESFORCE_ORG_ID}</OrganizationId><Notification>"
        "<Id>04l5e000000FuZzAAA</Id>"
        f'<sObject xsi:type="sf:Lead" xmlns:sf="{ENTERPRISE_SOBJECT_NS}">'
        f"<sf:Id>00Q5e000001FuZzEAA</sf:Id>{fields}</sObject>"
        "</Notification></notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


@FUZZ_SETTINGS
@given(body=envelopes())
# Regression: an Email longer than the email column (PostgreSQL refused the new contact).
@example(body=_lead_message(f"<sf:Email>{'a' * 400}@example.com</sf:Email>"))
async def test_outbound_message_envelopes(intake: Intake, body: bytes) -> None:
    await _post_and_process(intake, body, SALESFORCE_TOKEN)


@settings(FUZZ_SETTINGS, max_examples=15)
@given(envelope=envelopes(utf8_only=True), dtd=st.sampled_from(DTDS), entity=st.booleans())
async def test_document_type_declarations_are_refused(
    intake: Intake, envelope: bytes, dtd: bytes, entity: bool
) -> None:
    status = await _post_and_process(intake, _with_dtd(envelope, dtd, entity), SALESFORCE_TOKEN)
    # Another org's message is refused (403) before it is parsed at all.
    assert status in (400, 403)


@FUZZ_SETTINGS
@given(
    body=hostile_bodies(),
    token=st.sampled_from([SALESFORCE_TOKEN] * 6 + [None, "", SALESFORCE_TOKEN + "x", "é"]),
)
async def test_hostile_bodies_and_tokens(intake: Intake, body: bytes, token: str | None) -> None:
    await _post_and_process(intake, body, token)


@pytest.mark.parametrize("extra", [0, 1])
async def test_body_size_limit(intake: Intake, extra: int) -> None:
    """A message of exactly MAX_BODY_BYTES is read; one byte more is 413 (a SOAP Fault too)."""
    limit = intake.settings.max_body_bytes
    padding = limit + extra - len(_lead_message("<sf:Title></sf:Title>"))
    body = _lead_message(f"<sf:Title>{'x' * padding}</sf:Title>")
    assert len(body) == limit + extra
    assert await _post_and_process(intake, body, SALESFORCE_TOKEN) == (413 if extra else 200)
