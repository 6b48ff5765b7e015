"""`POST /webhooks/salesforce` (CONTRACT.md §3, §4): Outbound Messages in, SOAP Ack or Fault out."""

# The reference message is copied verbatim, long lines included.

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from xml.etree.ElementTree import Element

import httpx
import pytest
from defusedxml.ElementTree import fromstring
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.reference import SALESFORCE_OUTBOUND_MESSAGE, SALESFORCE_SESSION_ID

from syncgate.api import webhooks
from syncgate.config import Settings
from syncgate.inbox.models import InboxEvent
from syncgate.main import create_app
from syncgate.platforms.salesforce.outbound_message import ACK_RESPONSE

PATH = "/webhooks/salesforce"
ORG_ID = "012345678901234"
UNREACHABLE_DATABASE = "postgresql://postgres@127.0.0.1:1/syncgate"
SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
SOAP_HEADERS = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'}


REAL_MESSAGE = SALESFORCE_OUTBOUND_MESSAGE.encode()
REAL_NOTIFICATION_IDS = ["04l1I000000fztEQAQ", "04l1I000000fzt9QAA"]


def notification(
    notification_id: str,
    record_id: str,
    *,
    object_type: str = "Lead",
    fields: str = "",
) -> str:
    return f"""
   <Notification>
    <Id>{notification_id}</Id>
    <sObject xsi:type="sf:{object_type}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>{record_id}</sf:Id>{fields}
    </sObject>
   </Notification>"""


def message(
    *notifications: str,
    org_id: str = ORG_ID,
    session_id: str = '<SessionId xsi:nil="true"/>',
    namespace: str = OUTBOUND,
    envelope_namespace: str = SOAPENV,
) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="{envelope_namespace}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="{namespace}">
   <OrganizationId>{org_id}</OrganizationId>
   <ActionId>04k5e000000Gm6LAAS</ActionId>
   {session_id}
   <EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/62.0/00D5e000000KQ2e</EnterpriseUrl>
   <PartnerUrl>https://example.my.salesforce.com/services/Soap/u/62.0/00D5e000000KQ2e</PartnerUrl>{"".join(notifications)}
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>""".encode()


LEAD_FIELDS = """
     <sf:Company>Acme</sf:Company>
     <sf:CreatedDate>2024-05-06T07:08:09.000Z</sf:CreatedDate>
     <sf:Email>ada@example.com</sf:Email>
     <sf:FirstName>Ada</sf:FirstName>
     <sf:LastModifiedDate>2024-05-06T07:08:10.000Z</sf:LastModifiedDate>
     <sf:LastName>Lovelace</sf:LastName>
     <sf:Phone xsi:nil="true"/>"""


def lead_message(*ids: tuple[str, str], **kwargs: Any) -> bytes:
    return message(*(notification(n, r, fields=LEAD_FIELDS) for n, r in ids), **kwargs)


@asynccontextmanager
async def serving(config: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with `config`, started through its real lifespan (as the `client` fixture)."""
    app = create_app(config, run_worker=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        yield http


@pytest.fixture
def salesforce_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"salesforce_org_id": ORG_ID})


@pytest.fixture
async def salesforce(salesforce_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(salesforce_settings) as http:
        yield http


async def post(http: httpx.AsyncClient, body: bytes, url: str = PATH) -> httpx.Response:
    return await http.post(url, content=body, headers=SOAP_HEADERS)


async def stored(session_factory: async_sessionmaker[AsyncSession]) -> list[InboxEvent]:
    async with session_factory() as session:
        return list((await session.scalars(select(InboxEvent).order_by(InboxEvent.id))).all())


def assert_acknowledged(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0].strip() == "text/xml"
    assert response.content == ACK_RESPONSE
    root = fromstring(response.content)
    ack = root.find(f"{{{SOAPENV}}}Body/{{{OUTBOUND}}}notificationsResponse/{{{OUTBOUND}}}Ack")
    assert ack is not None and ack.text == "true"


def assert_fault(response: httpx.Response, status: int, *, client: bool = True) -> str:
    """A well-formed SOAP 1.1 Fault with a faultcode and a non-empty faultstring."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == "text/xml"
    root: Element = fromstring(response.content)
    assert root.tag == f"{{{SOAPENV}}}Envelope"
    (body,) = [child for child in root if child.tag == f"{{{SOAPENV}}}Body"]
    (fault,) = list(body)
    assert fault.tag == f"{{{SOAPENV}}}Fault"
    # SOAP 1.1: faultcode and faultstring are unqualified children of Fault.
    faultcode = fault.find("faultcode")
    faultstring = fault.find("faultstring")
    assert faultcode is not None and faultstring is not None
    assert faultcode.text == ("soapenv:Client" if client else "soapenv:Server")
    assert faultstring.text and faultstring.text.strip()
    assert b"<Ack>" not in response.content
    return faultstring.text


_SAMPLE = re.compile(r"^syncgate_webhook_events_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


async def webhook_counts(http: httpx.AsyncClient) -> dict[str, float]:
    """`syncgate_webhook_events_total{source="salesforce"}` by outcome, read from /metrics."""
    counts: dict[str, float] = {}
    for line in (await http.get("/metrics")).text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("source") == "salesforce":
            counts[labels["outcome"]] = float(match["value"])
    return counts


def moved(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


# --- acknowledged and stored ----------------------------------------------------------------


async def test_the_reference_message_is_acknowledged_and_stored(
    salesforce: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    assert_acknowledged(await post(salesforce, REAL_MESSAGE))

    rows = await stored(session_factory)
    assert [row.dedup_key for row in rows] == REAL_NOTIFICATION_IDS
    assert all(row.source == "salesforce" for row in rows)
    assert [row.kind for row in rows] == ["Contact", "Contact"]
    assert [row.object_key for row in rows] == [
        "salesforce:0031I0000081tbPQAQ",
        "salesforce:0031I0000081tb0QAA",
    ]
    assert all(row.status == "pending" for row in rows)
    first, second = (row.payload for row in rows)
    assert first["fields"] == {
        "Id": "0031I0000081tbPQAQ",
        "CreatedDate": "2017-12-11T21:49:24.000Z",
        "FirstName": "Jeraldine",
        "LastName": "Black",
        "Title": "White",
    }
    assert "Email" not in first["fields"]  # absent stays absent
    assert second["fields"]["Email"] == "doug.bunting@example.com"
    assert second["object_type"] == "Contact"
    assert second["record_id"] == "0031I0000081tb0QAA"


async def test_the_session_id_is_never_stored(
    salesforce: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    assert_acknowledged(await post(salesforce, REAL_MESSAGE))
    rows = await stored(session_factory)
    assert len(rows) == 2
    for row in rows:
        dumped = json.dumps(row.payload)
        assert "SessionId" not in dumped and "session" not in dumped.lower()
        assert SALESFORCE_SESSION_ID not in dumped
        assert "AQsAQOjGFnFJzGPA12yhUGL9Aii0N6lADjH2bNUBHRer5QjjTq3" not in dumped


async def test_a_lead_with_dates_and_a_nil_field(
    salesforce: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    body = lead_message(("04l5e000000AAAAAAA", "00Q5e000001AAAAEAA"))
    assert_acknowledged(await post(salesforce, body))
    (row,) = await stored(session_factory)
    assert row.kind == "Lead"
    assert row.object_key == "salesforce:00Q5e000001AAAAEAA"
    assert row.payload["fields"]["Phone"] is None
    assert row.payload["fields"]["Company"] == "Acme"
    # 2024-05-06T07:08:10Z, the LastModifiedDate.
    assert row.occurred_at_ms == 1714979290000


@pytest.mark.parametrize(
    ("configured", "sent"),
    [
        ("012345678901234", "012345678901234"),
        ("012345678901234AAA", "012345678901234"),
        ("012345678901234", "012345678901234AAA"),
        ("00D5e000000KQ2e", "00D5e000000KQ2eEAG"),
        ("00D5e000000KQ2eEAG", "00D5e000000KQ2eXYZ"),
    ],
)
async def test_the_org_id_matches_on_its_first_15_characters(
    settings: Settings, configured: str, sent: str
) -> None:
    config = settings.model_copy(update={"salesforce_org_id": configured})
    async with serving(config) as http:
        body = lead_message(("04l5e000000AAAAAAA", "00Q5e000001AAAAEAA"), org_id=sent)
        assert_acknowledged(await post(http, body))


async def test_the_18_character_form_of_the_reference_org(settings: Settings) -> None:
    config = settings.model_copy(update={"salesforce_org_id": "012345678901234AAA"})
    async with serving(config) as http:
        assert_acknowledged(await post(http, REAL_MESSAGE))


async def test_other_object_types_are_acknowledged(
    salesforce: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    body = message(
        notification("04l5e000000AAAAAAA", "0065e000001AAAAAAA", object_type="Opportunity")
    )
    assert_acknowledged(await post(salesforce, body))
    assert [row.kind for row in await stored(session_factory)] == ["Opportunity"]


async def test_a_hundred_notifications_are_acknowledged(
    salesforce: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    ids = [(f"04l5e00000{n:08d}", f"00Q5e00000{n:08d}") for n in range(100)]
    assert_acknowledged(await post(salesforce, lead_message(*ids)))
    assert len(await stored(session_factory)) == 100


async def test_the_token_is_not_required_when_none_is_set(salesforce: httpx.AsyncClient) -> None:
    assert_acknowledged(await post(salesforce, REAL_MESSAGE, url=f"{PATH}?token=anything"))


# --- duplicates -----------------------------------------------------------------------------


async def test_a_redelivered_message_stores_nothing_new_and_is_acknowledged(
    salesforce: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    assert_acknowledged(await post(salesforce, REAL_MESSAGE))
    before = await stored(session_factory)
    assert_acknowledged(await post(salesforce, REAL_MESSAGE))
    after = await stored(session_factory)
    assert [(r.id, r.dedup_key, r.payload) for r in after] == [
        (r.id, r.dedup_key, r.payload) for r in before
    ]


async def test_dedup_is_on_the_notification_id(
    salesforce: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    first = lead_message(("04l5e000000AAAAAAA", "00Q5e000001AAAAEAA"))
    assert_acknowledged(await post(salesforce, first))
    # Same notification id, (newer) data: a redelivery; a new id for the same record: new.
    again = message(
        notification("04l5e000000AAAAAAA", "00Q5e000001AAAAEAA", fields=LEAD_FIELDS),
        notification("04l5e000000BBBBBBB", "00Q5e000001AAAAEAA", fields=LEAD_FIELDS),
    )
    assert_acknowledged(await post(salesforce, again))
    rows = await stored(session_factory)
    assert [row.dedup_key for row in rows] == ["04l5e000000AAAAAAA", "04l5e000000BBBBBBB"]


async def test_a_notification_repeated_inside_one_message(
    salesforce: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    body = lead_message(
        ("04l5e000000AAAAAAA", "00Q5e000001AAAAEAA"),
        ("04l5e000000AAAAAAA", "00Q5e000001AAAAEAA"),
    )
    assert_acknowledged(await post(salesforce, body))
    assert len(await stored(session_factory)) == 1


async def test_concurrent_redeliveries_store_each_notification_once(
    salesforce: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    responses = await asyncio.gather(*(post(salesforce, REAL_MESSAGE) for _ in range(6)))
    for response in responses:
        assert_acknowledged(response)
    assert [row.dedup_key for row in await stored(session_factory)] == REAL_NOTIFICATION_IDS


# --- malformed ------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
<notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>&lol4;</OrganizationId>
</notifications></soapenv:Body></soapenv:Envelope>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
<notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>&xxe;</OrganizationId>
</notifications></soapenv:Body></soapenv:Envelope>"""

DOCTYPE_ONLY = b'<?xml version="1.0"?>\n<!DOCTYPE soapenv:Envelope>\n' + REAL_MESSAGE

MALFORMED = {
    "empty": b"",
    "truncated": REAL_MESSAGE[: len(REAL_MESSAGE) // 2],
    "not-xml": b"hello",
    "json": json.dumps({"OrganizationId": ORG_ID, "Notification": []}).encode(),
    "json-array": b"[]",
    "html": b"<html><body>hi</body></html>",
    "wrong-notifications-namespace": lead_message(
        ("04l5e000000AAAAAAA", "00Q5e000001AAAAEAA"),
        namespace="http://soap.sforce.com/2005/09/inbound",
    ),
    "no-notifications-namespace": lead_message(
        ("04l5e000000AAAAAAA", "00Q5e000001AAAAEAA"), namespace=""
    ),
    "soap-1.2-envelope": lead_message(
        ("04l5e000000AAAAAAA", "00Q5e000001AAAAEAA"),
        envelope_namespace="http://www.w3.org/2003/05/soap-envelope",
    ),
    "billion-laughs": BILLION_LAUGHS,
    "external-entity": EXTERNAL_ENTITY,
    "doctype": DOCTYPE_ONLY,
    "no-notification": message(),
    "no-org-id": lead_message(("04l5e000000AAAAAAA", "00Q5e000001AAAAEAA"), org_id=""),
    "bad-org-id": lead_message(("04l5e000000AAAAAAA", "00Q5e000001AAAAEAA"), org_id="0123"),
    "no-notification-id": message(notification("", "00Q5e000001AAAAEAA")),
    "bad-record-id": message(notification("04l5e000000AAAAAAA", "not-an-id")),
    "over-100-notifications": lead_message(
        *[(f"04l5e00000{n:08d}", f"00Q5e00000{n:08d}") for n in range(101)]
    ),
    "overlong-object-type": message(
        notification("04l5e000000AAAAAAA", "00Q5e000001AAAAEAA", object_type="X" * 65)
    ),
    "invalid-utf8": REAL_MESSAGE.replace(b"Jeraldine", b"Jer\xffaldine"),
    "nul-character-reference": REAL_MESSAGE.replace(b"Jeraldine", b"Jer&#0;aldine"),
}


@pytest.mark.parametrize("body", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_malformed_messages_get_a_400_fault(
    salesforce: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    body: bytes,
) -> None:
    assert_fault(await post(salesforce, body), 400)
    assert await stored(session_factory) == []


async def test_a_fault_string_with_markup_stays_well_formed(salesforce: httpx.AsyncClient) -> None:
    body = REAL_MESSAGE.replace(b"notifications", b"n<&>'\"otifications")
    assert_fault(await post(salesforce, body), 400)


# --- token, org, disabled -------------------------------------------------------------------

TOKEN = "s3cr3t-token"


@pytest.fixture
async def with_token(salesforce_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    config = salesforce_settings.model_copy(update={"salesforce_webhook_token": TOKEN})
    async with serving(config) as http:
        yield http


@pytest.mark.parametrize(
    "query",
    ["", "?token=", "?token=wrong", f"?token={TOKEN}x", f"?token={TOKEN[:-1]}", "?Token=" + TOKEN],
    ids=["missing", "empty", "wrong", "longer", "shorter", "wrong-case-name"],
)
async def test_a_missing_or_wrong_token_gets_a_401_fault(
    with_token: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    query: str,
) -> None:
    assert_fault(await post(with_token, REAL_MESSAGE, url=PATH + query), 401)
    assert await stored(session_factory) == []


async def test_the_right_token_is_acknowledged(
    with_token: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    assert_acknowledged(await post(with_token, REAL_MESSAGE, url=f"{PATH}?token={TOKEN}"))
    assert len(await stored(session_factory)) == 2


async def test_a_token_with_reserved_characters(salesforce_settings: Settings) -> None:
    token = "a+b/c=d&é"
    config = salesforce_settings.model_copy(update={"salesforce_webhook_token": token})
    async with serving(config) as http:
        response = await http.post(
            PATH, params={"token": token}, content=REAL_MESSAGE, headers=SOAP_HEADERS
        )
        assert_acknowledged(response)
        raw = await post(http, REAL_MESSAGE, url=f"{PATH}?token=a+b/c=d%26%C3%A9")
        assert_fault(raw, 401)  # "+" is a space in a query string


async def test_the_token_is_checked_before_the_body(with_token: httpx.AsyncClient) -> None:
    assert_fault(await post(with_token, b"not xml"), 401)


@pytest.mark.parametrize(
    "org_id",
    ["00D000000000001", "00D000000000001EAA", "012345678901235", "01234567890123X"],
)
async def test_another_org_gets_a_403_fault(
    salesforce: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    org_id: str,
) -> None:
    body = REAL_MESSAGE.replace(b"012345678901234", org_id.encode())
    assert_fault(await post(salesforce, body), 403)
    assert await stored(session_factory) == []


async def test_another_org_is_refused_before_its_message_is_parsed(
    salesforce: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def parse(_: bytes) -> None:
        raise AssertionError("a message from another org was parsed")

    monkeypatch.setattr(webhooks, "parse_outbound_message", parse)
    other_org = REAL_MESSAGE.replace(b"012345678901234", b"00D000000000001")
    assert_fault(await post(salesforce, other_org), 403)
    # Not even well-formed: the org id alone decides.
    assert_fault(await post(salesforce, other_org[: len(other_org) // 2]), 403)


async def test_a_misleading_first_org_id_is_still_checked_after_the_parse(
    salesforce: httpx.AsyncClient,
) -> None:
    body = REAL_MESSAGE.replace(
        b"<soapenv:Body>", b"<soapenv:Body><!--<OrganizationId>012345678901234</OrganizationId>-->"
    ).replace(b"<OrganizationId>012345678901234<", b"<OrganizationId>00D000000000001<")
    assert_fault(await post(salesforce, body), 403)


async def test_the_org_id_comparison_is_case_sensitive(settings: Settings) -> None:
    config = settings.model_copy(update={"salesforce_org_id": "00D5e000000KQ2e"})
    async with serving(config) as http:
        body = lead_message(
            ("04l5e000000AAAAAAA", "00Q5e000001AAAAEAA"), org_id="00D5E000000KQ2eEAG"
        )
        assert_fault(await post(http, body), 403)


async def test_404_without_an_org_id(settings: Settings) -> None:
    assert settings.salesforce_org_id is None
    async with serving(settings) as http:
        response = await post(http, REAL_MESSAGE)
        assert response.status_code == 404, response.text
        assert_fault(response, 404)


@pytest.mark.parametrize("blank", ["", "   "])
async def test_a_blank_org_id_disables_intake(settings: Settings, blank: str) -> None:
    async with serving(settings.model_copy(update={"salesforce_org_id": blank})) as http:
        assert_fault(await post(http, REAL_MESSAGE), 404)


def test_a_blank_org_id_in_the_environment_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCGATE_SALESFORCE_ORG_ID", "")
    monkeypatch.setenv("SYNCGATE_SALESFORCE_WEBHOOK_TOKEN", "")
    config = Settings(_env_file=None)
    assert config.salesforce_org_id is None
    assert config.salesforce_webhook_token is None


async def test_a_blank_token_means_no_token(salesforce_settings: Settings) -> None:
    config = salesforce_settings.model_copy(update={"salesforce_webhook_token": ""})
    async with serving(config) as http:
        assert_acknowledged(await post(http, REAL_MESSAGE, url=f"{PATH}?token=whatever"))


# --- body size ------------------------------------------------------------------------------

LIMIT = 2048


@pytest.fixture
async def small_limit(salesforce_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    config = salesforce_settings.model_copy(update={"max_body_bytes": LIMIT})
    async with serving(config) as http:
        yield http


def padded(size: int) -> bytes:
    """The reference message padded with trailing whitespace to exactly `size` bytes."""
    assert len(REAL_MESSAGE) <= size
    return REAL_MESSAGE + b" " * (size - len(REAL_MESSAGE))


async def test_a_message_at_the_limit_is_acknowledged(small_limit: httpx.AsyncClient) -> None:
    assert_acknowledged(await post(small_limit, padded(LIMIT)))


async def test_a_message_over_the_limit_gets_a_413_fault(
    small_limit: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    assert_fault(await post(small_limit, padded(LIMIT + 1)), 413)
    assert await stored(session_factory) == []


async def _streamed(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 500):
        yield body[start : start + 500]


async def test_a_chunked_message_over_the_limit_gets_a_413_fault(
    small_limit: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    request = small_limit.build_request(
        "POST", PATH, content=_streamed(padded(LIMIT + 1)), headers=SOAP_HEADERS
    )
    assert "content-length" not in request.headers
    assert_fault(await small_limit.send(request), 413)
    assert await stored(session_factory) == []


async def test_a_chunked_message_within_the_limit_is_acknowledged(
    small_limit: httpx.AsyncClient,
) -> None:
    request = small_limit.build_request(
        "POST", PATH, content=_streamed(padded(LIMIT)), headers=SOAP_HEADERS
    )
    assert_acknowledged(await small_limit.send(request))


# --- store outage ---------------------------------------------------------------------------


async def test_a_503_fault_when_the_store_is_unavailable(salesforce_settings: Settings) -> None:
    config = salesforce_settings.model_copy(update={"database_url": UNREACHABLE_DATABASE})
    async with serving(config) as http:
        response = await post(http, REAL_MESSAGE)
        assert_fault(response, 503, client=False)
        assert response.headers["Retry-After"]
        # Checks that need no database still answer as usual.
        assert_fault(await post(http, b"junk"), 400)
        other_org = REAL_MESSAGE.replace(b"012345678901234", b"00D000000000001")
        assert_fault(await post(http, other_org), 403)


async def test_an_unexpected_error_is_a_500_fault(
    salesforce: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object) -> int:
        raise RuntimeError("boom <&>")

    monkeypatch.setattr(webhooks, "store_salesforce_message", broken)
    response = await post(salesforce, REAL_MESSAGE)
    faultstring = assert_fault(response, 500, client=False)
    assert "boom" not in faultstring  # internals are logged, not sent


# --- metrics --------------------------------------------------------------------------------


async def test_metrics_count_accepted_duplicate_and_rejected(
    salesforce: httpx.AsyncClient,
) -> None:
    before = await webhook_counts(salesforce)
    assert set(before) >= {"accepted", "duplicate", "rejected"}

    assert_acknowledged(await post(salesforce, REAL_MESSAGE))
    after_first = await webhook_counts(salesforce)
    assert moved(before, after_first) == {"accepted": 2}

    mixed = REAL_MESSAGE.replace(b"04l1I000000fzt9QAA", b"04l1I000000fzt9QAB")
    assert_acknowledged(await post(salesforce, mixed))
    after_second = await webhook_counts(salesforce)
    assert moved(after_first, after_second) == {"accepted": 1, "duplicate": 1}

    assert_fault(await post(salesforce, b"junk"), 400)
    assert moved(after_second, await webhook_counts(salesforce)) == {"rejected": 1}
