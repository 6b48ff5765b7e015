"""SalesforceClient and SalesforceAuth against an httpx.MockTransport org answering like the real
REST API (reference/salesforce.md §3-§4): envelopes, status codes, paging, per-record errors."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from syncgate.config import Settings
from syncgate.platforms.salesforce.client import (
    PermanentError,
    RecordResult,
    SalesforceClient,
    TransientError,
    salesforce_time_ms,
    soql_literal,
)
from syncgate.platforms.salesforce.oauth import SalesforceAuth, Token

if importlib.util.find_spec("fakes") is None:  # tests/ is on sys.path only via its conftest
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
try:
    from fakes.salesforce import FakeSalesforce, create_salesforce_app
    from fakes.server import running
except ImportError:  # the fake Salesforce server is optional
    FakeSalesforce = None  # type: ignore[assignment,misc]

LOGIN = "https://login.example.com"
INSTANCE = "https://acme.my.salesforce.com"
CLIENT_ID = "3MVG9-client-id"
CLIENT_SECRET = "s3cr3t-client-secret-value"
REFRESH_TOKEN = "5Aep861-refresh-token-value"
API = "/services/data/v62.0"
Handler = Callable[[httpx.Request], httpx.Response]


def sf_time(minute: int) -> str:
    return f"2026-11-28T10:{minute:02d}:00.000+0000"


class FakeOrg:
    """A MockTransport handler emulating the OAuth token endpoint, SOQL query and collections."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.token_forms: list[dict[str, str]] = []
        self.api_requests: list[httpx.Request] = []
        self.valid_tokens: set[str] = set()
        self.reject_all_tokens = False
        self.token_error: httpx.Response | None = None
        self.faults: list[Callable[[httpx.Request], httpx.Response]] = []
        self.locked_emails: set[str] = set()
        self.page_size = 2000
        self._cursors: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._tokens = itertools.count(1)

    # -- data --------------------------------------------------------------------------------
    def add(self, object_type: str, **fields: Any) -> str:
        prefix = {"Lead": "00Q", "Contact": "003"}[object_type]
        record_id = f"{prefix}Dn00000{next(self._ids):08d}AAA"
        fields.setdefault("LastModifiedDate", sf_time(0))
        if object_type == "Lead":
            fields.setdefault("IsConverted", False)
        self.records[record_id] = {"type": object_type, "Id": record_id, **fields}
        return record_id

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    def queries(self) -> list[str]:
        return [r.url.params["q"] for r in self.api_requests if r.url.path == f"{API}/query"]

    # -- transport ---------------------------------------------------------------------------
    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)  # let concurrent callers interleave as they would on a network
        if request.url.path == "/services/oauth2/token":
            return self._token(request)
        self.api_requests.append(request)
        if self.faults:
            return self.faults.pop(0)(request)
        auth = request.headers.get("Authorization", "")
        if self.reject_all_tokens or auth.removeprefix("Bearer ") not in self.valid_tokens:
            return error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        path = request.url.path
        if path == f"{API}/query":
            return self._query(request.url.params["q"])
        if path.startswith(f"{API}/query/"):
            return self._page(path.rsplit("/", 1)[1])
        if path == f"{API}/composite/sobjects":
            return self._collection(request)
        return error(404, "NOT_FOUND", "The requested resource does not exist")

    def _token(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        form = dict(parse_qsl(request.content.decode()))
        self.token_forms.append(form)
        if self.token_error is not None:
            return self.token_error
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            body = {"error": "invalid_client", "error_description": "invalid client credentials"}
            return httpx.Response(400, json=body)
        token = f"00DDn000000ORG1!AQ4AQ.token-{next(self._tokens)}"
        self.valid_tokens.add(token)
        return httpx.Response(
            200,
            json={
                "access_token": token,
                "signature": "b2xkLXNpZ25hdHVyZQ==",
                "scope": "api",
                "instance_url": INSTANCE,
                "id": "https://login.example.com/id/00DDn000000ORG1/005Dn000000USR1",
                "token_type": "Bearer",
                "issued_at": "1764324000000",
            },
        )

    _SELECT = re.compile(
        r"SELECT (?P<cols>[\w, .]+) FROM (?P<obj>Lead|Contact) WHERE (?P<field>Email|Id) IN "
        r"\((?P<values>.*)\)(?P<unconverted> AND IsConverted = false)?",
        re.DOTALL,
    )
    _LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")

    def _query(self, soql: str) -> httpx.Response:
        match = self._SELECT.fullmatch(soql)
        values = match and self._literals(match["values"])
        if not match or values is None:
            return error(400, "MALFORMED_QUERY", f"unexpected token: '{soql[:20]}'")
        columns = [c.strip() for c in match["cols"].split(",")]
        keys = {v.lower() for v in values}
        rows = [
            {
                "attributes": {"type": rec["type"], "url": f"{API}/sobjects/{rec['type']}/{rid}"},
                **{c: rec.get(c) for c in columns},
            }
            for rid, rec in self.records.items()
            if rec["type"] == match["obj"]
            and str(rec.get(match["field"]) or "").lower() in keys  # = on text is case-blind
            and not (match["unconverted"] and rec.get("IsConverted"))
        ]
        return self._answer(rows, len(rows))

    def _literals(self, text: str) -> list[str] | None:
        values, position = [], 0
        for match in self._LITERAL.finditer(text):
            if text[position : match.start()].strip() not in ("", ","):
                return None
            values.append(re.sub(r"\\(.)", r"\1", match[1]))
            position = match.end()
        return values if text[position:].strip() == "" else None

    def _answer(self, rows: list[dict[str, Any]], total: int) -> httpx.Response:
        head, rest = rows[: self.page_size], rows[self.page_size :]
        body: dict[str, Any] = {"totalSize": total, "done": not rest, "records": head}
        if rest:
            cursor = f"01gDn00000CURSOR-{total - len(rest)}"
            self._cursors[cursor] = rest
            body["nextRecordsUrl"] = f"{API}/query/{cursor}"
        return httpx.Response(200, json=body)

    def _page(self, cursor: str) -> httpx.Response:
        rows = self._cursors.pop(cursor)
        return self._answer(rows, len(rows) + int(cursor.rsplit("-", 1)[1]))

    def _collection(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body.get("allOrNone") is not False or len(body["records"]) > 200:
            return error(400, "INVALID_FIELD", "unexpected collection request")
        handle = self._create if request.method == "POST" else self._update
        return httpx.Response(200, json=[handle(dict(r)) for r in body["records"]])

    def _create(self, record: dict[str, Any]) -> dict[str, Any]:
        object_type = record.pop("attributes")["type"]
        missing = [f for f in ("LastName", "Company") if f not in record]
        missing = missing if object_type == "Lead" else [f for f in missing if f == "LastName"]
        if missing:
            return failure("REQUIRED_FIELD_MISSING", f"Required fields are missing: {missing}")
        if failed := self._check(record):
            return failed
        record_id = self.add(object_type, **record)
        return {"id": record_id, "success": True, "errors": []}

    def _update(self, record: dict[str, Any]) -> dict[str, Any]:
        record.pop("attributes")
        record_id = record.pop("id")
        current = self.records.get(record_id)
        if current is None:
            return failure("ENTITY_IS_DELETED", "entity is deleted")
        if current.get("IsConverted"):
            return failure("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
        if failed := self._check({**current, **record}):
            return failed
        current.update(record, LastModifiedDate=sf_time(59))
        return {"id": record_id, "success": True, "errors": []}

    def _check(self, record: dict[str, Any]) -> dict[str, Any] | None:
        email = str(record.get("Email") or "")
        if email and "@" not in email:
            return failure("INVALID_EMAIL_ADDRESS", f"Email: invalid email address: {email}")
        if email.lower() in self.locked_emails:
            return failure(
                "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record", ["Id"]
            )
        return None


def error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json=[{"message": message, "errorCode": code}])


def failure(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    error = {"statusCode": code, "message": message, "fields": fields or []}
    return {"success": False, "errors": [error]}


def timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.fixture
def org() -> FakeOrg:
    return FakeOrg()


@pytest.fixture
async def http(org: FakeOrg) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(org)) as client:
        yield client


@pytest.fixture
def auth(http: httpx.AsyncClient) -> SalesforceAuth:
    return SalesforceAuth(http, LOGIN + "/", CLIENT_ID, CLIENT_SECRET)


@pytest.fixture
def client(auth: SalesforceAuth, http: httpx.AsyncClient) -> SalesforceClient:
    return SalesforceClient(auth, http, "62.0")


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **{"salesforce_login_url": LOGIN, **values})


# -- OAuth -------------------------------------------------------------------------------------


async def test_client_credentials_grant_and_bearer_calls(
    org: FakeOrg, client: SalesforceClient
) -> None:
    org.add("Contact", Email="a@x.com", LastName="A")
    rows = await client.query("SELECT Id FROM Contact WHERE Email IN ('a@x.com')")
    assert org.token_forms == [
        {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    ]
    [request] = org.api_requests
    assert str(request.url).startswith(f"{INSTANCE}{API}/query?q=")
    assert request.headers["Authorization"] == "Bearer 00DDn000000ORG1!AQ4AQ.token-1"
    assert rows[0]["attributes"]["type"] == "Contact"


async def test_refresh_token_grant_from_settings(org: FakeOrg, http: httpx.AsyncClient) -> None:
    configured = settings(
        salesforce_client_id=CLIENT_ID,
        salesforce_client_secret=CLIENT_SECRET,
        salesforce_refresh_token=REFRESH_TOKEN,
        salesforce_api_version="61.0",
    )
    client = SalesforceClient.from_settings(configured, http)
    assert client is not None
    with pytest.raises(PermanentError):  # v61.0 is not served by the fake: proves the version
        await client.query("SELECT Id FROM Lead WHERE Id IN ('x')")
    assert org.token_forms == [
        {
            "grant_type": "refresh_token",
            "refresh_token": REFRESH_TOKEN,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
    ]
    assert org.api_requests[0].url.path == "/services/data/v61.0/query"


def test_from_settings_is_none_without_credentials(http: httpx.AsyncClient) -> None:
    assert SalesforceClient.from_settings(settings(), http) is None
    assert SalesforceClient.from_settings(settings(salesforce_client_id=CLIENT_ID), http) is None
    only_secret = settings(salesforce_client_secret=CLIENT_SECRET)
    assert SalesforceClient.from_settings(only_secret, http) is None


async def test_token_is_cached_across_calls(org: FakeOrg, client: SalesforceClient) -> None:
    for _ in range(3):
        await client.query("SELECT Id FROM Lead WHERE Email IN ('a@x.com')")
    assert len(org.token_forms) == 1
    assert len(org.api_requests) == 3


async def test_401_renews_once_and_repeats_the_call(org: FakeOrg, client: SalesforceClient) -> None:
    org.add("Lead", Email="a@x.com", LastName="A", Company="C")
    await client.query("SELECT Id FROM Lead WHERE Email IN ('a@x.com')")
    org.expire_tokens()
    rows = await client.query("SELECT Id FROM Lead WHERE Email IN ('a@x.com')")
    assert len(rows) == 1
    assert len(org.token_forms) == 2
    tokens = [r.headers["Authorization"][-7:] for r in org.api_requests]
    assert tokens == ["token-1", "token-1", "token-2"]


async def test_second_401_is_permanent(org: FakeOrg, client: SalesforceClient) -> None:
    org.reject_all_tokens = True
    with pytest.raises(PermanentError, match="rejected the renewed token") as caught:
        await client.query("SELECT Id FROM Lead WHERE Email IN ('a@x.com')")
    assert "INVALID_SESSION_ID" in caught.value.message
    assert len(org.token_forms) == 2
    assert len(org.api_requests) == 2
    assert "token-" not in str(caught.value)


async def test_concurrent_401s_cause_one_renewal(org: FakeOrg, client: SalesforceClient) -> None:
    await client.query("SELECT Id FROM Lead WHERE Email IN ('a@x.com')")
    org.expire_tokens()
    soql = "SELECT Id FROM Lead WHERE Email IN ('a@x.com')"
    await asyncio.gather(*(client.query(soql) for _ in range(10)))
    assert len(org.token_forms) == 2
    assert len(org.api_requests) == 1 + 10 + 10


async def test_concurrent_first_calls_fetch_one_token(
    org: FakeOrg, client: SalesforceClient
) -> None:
    soql = "SELECT Id FROM Lead WHERE Email IN ('a@x.com')"
    await asyncio.gather(*(client.query(soql) for _ in range(5)))
    assert len(org.token_forms) == 1


async def test_oauth_invalid_client_is_permanent_and_names_no_secret(
    http: httpx.AsyncClient,
) -> None:
    auth = SalesforceAuth(http, LOGIN, CLIENT_ID, "wrong-" + CLIENT_SECRET)
    with pytest.raises(PermanentError) as caught:
        await auth.token()
    assert (
        str(caught.value) == "Salesforce OAuth failed: invalid_client: invalid client credentials"
    )


@pytest.mark.parametrize(
    "answer",
    [
        lambda r: httpx.Response(503, text="<html>Maintenance</html>"),
        lambda r: httpx.Response(429, json={"error": "rate_limit_exceeded"}),
        lambda r: httpx.Response(400, json={"error": "rate_limit_exceeded"}),
        refused,
        timeout,
    ],
    ids=["503", "429", "rate_limit_exceeded", "connect", "timeout"],
)
async def test_oauth_outages_are_transient(answer: Handler) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return answer(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        auth = SalesforceAuth(http, LOGIN, CLIENT_ID, CLIENT_SECRET)
        with pytest.raises(TransientError):
            await auth.token()


async def test_secrets_never_appear_in_exception_text(
    org: FakeOrg, http: httpx.AsyncClient
) -> None:
    echo = f"client_secret {CLIENT_SECRET} or refresh token {REFRESH_TOKEN} is invalid"
    org.token_error = httpx.Response(
        400, json={"error": "invalid_grant", "error_description": echo}
    )
    auth = SalesforceAuth(http, LOGIN, CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN)
    with pytest.raises(PermanentError) as caught:
        await auth.token()
    text = f"{caught.value} {caught.value!r} {caught.value.message}"
    assert CLIENT_SECRET not in text and REFRESH_TOKEN not in text
    assert "invalid_grant" in text
    assert "secret-token" not in repr(Token("secret-token", INSTANCE))


async def test_renewal_does_not_refetch_when_token_already_replaced(auth: SalesforceAuth) -> None:
    first = await auth.token()
    second = await auth.renew(first)
    assert await auth.renew(first) is second
    assert second.access_token != first.access_token


async def test_rotated_refresh_token_is_used_next_time(
    org: FakeOrg, http: httpx.AsyncClient
) -> None:
    auth = SalesforceAuth(http, LOGIN, CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN)
    org.token_error = httpx.Response(
        200, json={"access_token": "t1", "instance_url": INSTANCE, "refresh_token": "rotated-2"}
    )
    await auth.renew(await auth.token())
    assert [f["refresh_token"] for f in org.token_forms] == [REFRESH_TOKEN, "rotated-2"]


# -- whole-call failures -----------------------------------------------------------------------


async def test_429_with_retry_after_seconds(org: FakeOrg, client: SalesforceClient) -> None:
    org.faults.append(lambda r: httpx.Response(429, headers={"Retry-After": "7"}))
    with pytest.raises(TransientError) as caught:
        await client.query("SELECT Id FROM Lead WHERE Email IN ('a@x.com')")
    assert caught.value.retry_after == 7.0


async def test_retry_after_http_date(org: FakeOrg, client: SalesforceClient) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    org.faults.append(lambda r: httpx.Response(503, headers={"Retry-After": when}))
    with pytest.raises(TransientError) as caught:
        await client.query("SELECT Id FROM Lead WHERE Email IN ('a@x.com')")
    assert caught.value.retry_after is not None and 100 < caught.value.retry_after <= 120


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        (lambda r: httpx.Response(503, text="<html>Down for maintenance</html>"), "HTTP 503"),
        (lambda r: error(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred"), "UNKNOWN"),
        (lambda r: error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), "LIMIT"),
        (lambda r: error(400, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access"), "LOCK"),
        (timeout, "timed out"),
        (refused, "unreachable"),
    ],
    ids=["503-html", "500", "request-limit", "lock", "timeout", "connect"],
)
async def test_transient_whole_call_failures(
    org: FakeOrg, client: SalesforceClient, answer: Handler, text: str
) -> None:
    org.faults.append(answer)
    with pytest.raises(TransientError, match=text) as caught:
        await client.query("SELECT Id FROM Lead WHERE Email IN ('a@x.com')")
    assert caught.value.retry_after is None


async def test_malformed_query_is_permanent_with_code_and_message(client: SalesforceClient) -> None:
    with pytest.raises(PermanentError) as caught:
        await client.query("SELECT Id FROM")
    assert caught.value.message.startswith("MALFORMED_QUERY: unexpected token")
    assert "(HTTP 400)" in caught.value.message


async def test_other_403_is_permanent_and_not_renewed(
    org: FakeOrg, client: SalesforceClient
) -> None:
    org.faults.append(lambda r: error(403, "API_DISABLED_FOR_ORG", "API is not enabled"))
    with pytest.raises(PermanentError, match="API_DISABLED_FOR_ORG"):
        await client.query("SELECT Id FROM Lead WHERE Email IN ('a@x.com')")
    assert len(org.token_forms) == 1


# -- reads -------------------------------------------------------------------------------------


async def test_query_follows_next_records_url(org: FakeOrg, client: SalesforceClient) -> None:
    emails = [f"p{i}@x.com" for i in range(5)]
    for email in emails:
        org.add("Contact", Email=email, LastName="P")
    org.page_size = 2
    rows = await client.query(
        f"SELECT Id, Email FROM Contact WHERE Email IN ({', '.join(map(soql_literal, emails))})"
    )
    assert sorted(r["Email"] for r in rows) == emails
    assert all(r["attributes"]["type"] == "Contact" for r in rows)
    paths = [r.url.path for r in org.api_requests]
    assert paths == [
        f"{API}/query",
        f"{API}/query/01gDn00000CURSOR-2",
        f"{API}/query/01gDn00000CURSOR-4",
    ]


async def test_find_by_emails_picks_most_recent_record_case_insensitively(
    org: FakeOrg, client: SalesforceClient
) -> None:
    org.add("Lead", Email="a@x.com", LastName="A", Company="Old", LastModifiedDate=sf_time(5))
    contact_a = org.add("Contact", Email="A@X.com", LastName="A", LastModifiedDate=sf_time(9))
    lead_b = org.add(
        "Lead", Email="b@x.com", LastName="B", Company="New", LastModifiedDate=sf_time(9)
    )
    org.add("Contact", Email="b@x.com", LastName="B", LastModifiedDate=sf_time(5))
    # The converted Lead is newest, but HubSpot follows the Contact it became.
    contact_c = org.add("Contact", Email="c@x.com", LastName="C", LastModifiedDate=sf_time(5))
    org.add(
        "Lead",
        Email="c@x.com",
        LastName="C",
        Company="Z",
        IsConverted=True,
        LastModifiedDate=sf_time(30),
    )

    found = await client.find_by_emails(
        ["a@X.COM", "B@x.com", "c@x.com", "nobody@x.com"],
        {"Lead": ["FirstName", "Company"], "Contact": ["LastName"]},
    )

    assert set(found) == {"a@x.com", "b@x.com", "c@x.com"}
    assert (found["a@x.com"].object_type, found["a@x.com"].id) == ("Contact", contact_a)
    assert (found["b@x.com"].object_type, found["b@x.com"].id) == ("Lead", lead_b)
    assert found["c@x.com"].id == contact_c
    assert found["b@x.com"].values["Company"] == "New"
    assert found["b@x.com"].last_modified_ms == salesforce_time_ms(sf_time(9))
    lead_soql, contact_soql = org.queries()
    assert lead_soql.startswith("SELECT Id, Email, LastModifiedDate, FirstName, Company FROM Lead")
    assert lead_soql.endswith(" AND IsConverted = false")
    assert "IsConverted" not in contact_soql


async def test_find_by_emails_escapes_quotes_and_backslashes(
    org: FakeOrg, client: SalesforceClient
) -> None:
    obrien = org.add("Contact", Email="O'Brien@x.com", LastName="O'Brien")
    found = await client.find_by_emails(["O'Brien@x.com", "back\\slash@x.com"], {})
    assert found["o'brien@x.com"].id == obrien
    assert "IN ('o\\'brien@x.com', 'back\\\\slash@x.com')" in org.queries()[0]


async def test_query_reaches_salesforce_as_written_whatever_its_characters(
    org: FakeOrg, client: SalesforceClient
) -> None:
    # `+`, `&`, `%`, `#` and `;` mean something in a URL; the org must still read the statement.
    email = "a+b&c%d#e;f=g@x.com"
    tagged = org.add("Contact", Email=email, LastName="T")
    found = await client.find_by_emails([email], {})
    assert found[email].id == tagged
    assert f"IN ('{email}')" in org.queries()[0]


async def test_find_by_emails_chunks_long_lists(org: FakeOrg, client: SalesforceClient) -> None:
    emails = [f"person{i}@example.com" for i in range(250)]
    org.add("Lead", Email="person249@example.com", LastName="P", Company="C")
    found = await client.find_by_emails(emails, {})
    assert list(found) == ["person249@example.com"]
    assert [q.count("@") for q in org.queries()] == [200, 50, 200, 50]
    assert max(len(str(r.url)) for r in org.api_requests) < 16_000


async def test_find_by_emails_keeps_urls_short_when_every_character_is_escaped(
    org: FakeOrg, client: SalesforceClient
) -> None:
    # 80 characters that each take three in the URL: the lists are cut by what is sent.
    emails = [f"{i:03d}" + "%" * 70 + "@x.com" for i in range(200)]
    await client.find_by_emails(emails, {})
    lengths = [len(str(r.url)) for r in org.api_requests]
    assert len(lengths) > 2 and max(lengths) < 16_000
    assert sum(q.count("@") for q in org.queries()) == 2 * len(emails)


async def test_find_by_emails_with_nothing_to_find_makes_no_call(
    org: FakeOrg, client: SalesforceClient
) -> None:
    assert await client.find_by_emails(["", "  "], {"Lead": ["Company"]}) == {}
    assert org.api_requests == []


async def test_get_records_by_id(org: FakeOrg, client: SalesforceClient) -> None:
    lead = org.add(
        "Lead", Email="l@x.com", LastName="L", Company="Acme", LastModifiedDate=sf_time(7)
    )
    found = await client.get_records(
        "Lead", [lead, lead, "00QDn0000000000404"], ["Company", "IsConverted"]
    )
    assert list(found) == [lead]
    record = found[lead]
    assert record.object_type == "Lead"
    assert record.values["Company"] == "Acme" and record.values["IsConverted"] is False
    assert "attributes" not in record.values
    assert org.queries()[0].startswith(
        "SELECT Id, Email, LastModifiedDate, Company, IsConverted FROM Lead WHERE Id IN ("
    )


async def test_names_spliced_into_soql_are_checked(client: SalesforceClient) -> None:
    with pytest.raises(ValueError):
        await client.get_records("Lead WHERE", ["00Q"], [])
    with pytest.raises(ValueError):
        await client.find_by_emails(["a@x.com"], {"Contact": ["Name) FROM User --"]})


async def test_foreign_next_records_url_never_gets_the_token(
    org: FakeOrg, client: SalesforceClient
) -> None:
    org.faults.append(
        lambda r: httpx.Response(
            200, json={"done": False, "records": [], "nextRecordsUrl": "https://evil.example/x"}
        )
    )
    with pytest.raises(PermanentError):
        await client.query("SELECT Id FROM Lead WHERE Email IN ('a@x.com')")
    assert len(org.api_requests) == 1


def test_last_modified_date_parses_to_epoch_ms() -> None:
    assert salesforce_time_ms("2026-11-28T10:00:00.000+0000") == 1_795_860_000_000
    assert salesforce_time_ms("2026-11-28T10:00:00.250Z") == 1_795_860_000_250
    assert salesforce_time_ms(None) == 0


# -- writes ------------------------------------------------------------------------------------


async def test_create_records_mixed_results_in_input_order(
    org: FakeOrg, client: SalesforceClient
) -> None:
    org.locked_emails.add("locked@x.com")
    results = await client.create_records(
        [
            ("Contact", {"LastName": "Ok", "Email": "ok@x.com"}),
            ("Lead", {"LastName": "NoCompany", "Email": "lead@x.com"}),
            ("Contact", {"LastName": "Locked", "Email": "locked@x.com"}),
            ("Lead", {"LastName": "Fine", "Company": "Acme", "Email": "fine@x.com"}),
            ("Contact", {"LastName": "Bad", "Email": "not-an-email"}),
        ]
    )
    assert [r.success for r in results] == [True, False, False, True, False]
    assert results[0].id is not None and results[0].id.startswith("003")
    assert results[3].id is not None and results[3].id.startswith("00Q")
    assert results[1] == RecordResult(
        success=False,
        error_code="REQUIRED_FIELD_MISSING",
        message="Required fields are missing: ['Company']",
    )
    assert (results[2].error_code, results[2].transient) == ("UNABLE_TO_LOCK_ROW", True)
    assert (results[4].error_code, results[4].transient) == ("INVALID_EMAIL_ADDRESS", False)
    [request] = org.api_requests
    assert request.method == "POST" and request.url.path == f"{API}/composite/sobjects"
    body = httpx.Response(200, content=request.content).json()
    assert body["allOrNone"] is False
    types = [r["attributes"]["type"] for r in body["records"]]
    assert types == sorted(types)  # one chunk per type, never more than Salesforce allows


async def test_update_records_mixed_results(org: FakeOrg, client: SalesforceClient) -> None:
    contact = org.add("Contact", Email="c@x.com", LastName="C")
    converted = org.add("Lead", Email="l@x.com", LastName="L", Company="C", IsConverted=True)
    locked = org.add("Contact", Email="locked@x.com", LastName="Locked")
    org.locked_emails.add("locked@x.com")
    results = await client.update_records(
        [
            ("Contact", contact, {"FirstName": "Cleo"}),
            ("Lead", converted, {"FirstName": "Lou"}),
            ("Contact", locked, {"FirstName": "Lock"}),
        ]
    )
    assert results[0] == RecordResult(success=True, id=contact)
    assert (results[1].error_code, results[1].message, results[1].transient) == (
        "CANNOT_UPDATE_CONVERTED_LEAD",
        "cannot reference converted lead",
        False,
    )
    assert (results[2].error_code, results[2].transient) == ("UNABLE_TO_LOCK_ROW", True)
    assert org.records[contact]["FirstName"] == "Cleo"
    assert org.api_requests[0].method == "PATCH"
    sent = httpx.Response(200, content=org.api_requests[0].content).json()["records"]
    assert {"attributes": {"type": "Contact"}, "id": contact, "FirstName": "Cleo"} in sent


async def test_more_than_200_records_is_a_value_error(
    org: FakeOrg, client: SalesforceClient
) -> None:
    with pytest.raises(ValueError):
        await client.create_records([("Contact", {"LastName": "X"})] * 201)
    with pytest.raises(ValueError):
        await client.update_records([("Contact", "003", {"LastName": "X"})] * 201)
    assert org.api_requests == [] and org.token_forms == []
    assert await client.create_records([]) == []


async def test_exactly_200_records_is_one_call(org: FakeOrg, client: SalesforceClient) -> None:
    results = await client.create_records([("Contact", {"LastName": f"N{i}"}) for i in range(200)])
    assert all(r.success for r in results)
    assert len(org.api_requests) == 1


async def test_whole_collection_failure_raises(org: FakeOrg, client: SalesforceClient) -> None:
    org.faults.append(
        lambda r: error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    )
    with pytest.raises(TransientError, match="REQUEST_LIMIT_EXCEEDED"):
        await client.update_records([("Contact", "003Dn0000000000001", {"LastName": "X"})])


# -- against the fake Salesforce server (tests/fakes/salesforce.py) ----------------------------

needs_fake = pytest.mark.skipif(FakeSalesforce is None, reason="tests/fakes/salesforce.py missing")


@pytest.fixture
def fake_sf() -> Iterator[tuple[FakeSalesforce, str]]:
    fake = FakeSalesforce()
    with running(create_salesforce_app(fake)) as server:
        yield fake, server.url


@pytest.fixture
async def live_client(fake_sf: tuple[FakeSalesforce, str]) -> AsyncIterator[SalesforceClient]:
    fake, url = fake_sf
    async with httpx.AsyncClient(timeout=10) as http:
        configured = settings(
            salesforce_login_url=url,
            salesforce_client_id=fake.client_id,
            salesforce_client_secret=fake.client_secret,
        )
        client = SalesforceClient.from_settings(configured, http)
        assert client is not None
        yield client


@needs_fake
async def test_fake_org_round_trip(
    fake_sf: tuple[FakeSalesforce, str], live_client: SalesforceClient
) -> None:
    fake, _ = fake_sf
    fake.add_record("Lead", Email="jo@x.com", LastName="Jo", Company="Acme")
    contact = fake.add_record("Contact", Email="JO@x.com", LastName="Jo", FirstName="Jo")
    created = await live_client.create_records(
        [
            ("Lead", {"LastName": "O'Brien", "Company": "Pub", "Email": "O'Brien@x.com"}),
            ("Contact", {"Email": "nolastname@x.com"}),
        ]
    )
    assert created[0].success and created[0].id is not None
    assert (created[1].error_code, created[1].transient) == ("REQUIRED_FIELD_MISSING", False)

    fake.expire_tokens()
    found = await live_client.find_by_emails(
        ["jo@x.com", "o'brien@X.com"], {"Lead": ["Company"], "Contact": ["FirstName"]}
    )
    assert (found["jo@x.com"].object_type, found["jo@x.com"].id) == ("Contact", contact)
    assert found["o'brien@x.com"].id == created[0].id
    assert found["o'brien@x.com"].values["Company"] == "Pub"

    fake.lock_rows(1)
    lead_id = created[0].id
    [locked] = await live_client.update_records([("Lead", lead_id, {"FirstName": "Pat"})])
    assert (locked.error_code, locked.transient) == ("UNABLE_TO_LOCK_ROW", True)
    [updated] = await live_client.update_records([("Lead", lead_id, {"FirstName": "Pat"})])
    assert updated == RecordResult(success=True, id=lead_id)
    record = (await live_client.get_records("Lead", [lead_id], ["FirstName"]))[lead_id]
    assert record.values["FirstName"] == "Pat"
    assert record.last_modified_ms > found["o'brien@x.com"].last_modified_ms


@needs_fake
async def test_fake_org_converted_lead(
    fake_sf: tuple[FakeSalesforce, str], live_client: SalesforceClient
) -> None:
    fake, _ = fake_sf
    lead = fake.add_record("Lead", Email="conv@x.com", LastName="Conv", Company="Acme")
    contact = fake.convert_lead(lead)
    found = await live_client.find_by_emails(["conv@x.com"], {"Lead": [], "Contact": []})
    assert (found["conv@x.com"].object_type, found["conv@x.com"].id) == ("Contact", contact)
    [result] = await live_client.update_records([("Lead", lead, {"FirstName": "X"})])
    assert (result.error_code, result.transient) == ("CANNOT_UPDATE_CONVERTED_LEAD", False)
    leads = await live_client.get_records("Lead", [lead], ["IsConverted", "ConvertedContactId"])
    assert leads[lead].values["ConvertedContactId"] == contact


@needs_fake
async def test_fake_org_whole_call_failures(
    fake_sf: tuple[FakeSalesforce, str], live_client: SalesforceClient
) -> None:
    fake, _ = fake_sf
    fake.request_limit_exceeded()
    with pytest.raises(TransientError, match="REQUEST_LIMIT_EXCEEDED"):
        await live_client.find_by_emails(["a@x.com"], {})
    fake.fail_next(status=503)
    with pytest.raises(TransientError, match="SERVER_UNAVAILABLE"):
        await live_client.find_by_emails(["a@x.com"], {})
    with pytest.raises(PermanentError, match="INVALID_FIELD"):
        await live_client.create_records([("Lead", {"NoSuchField__c": 1})])


@needs_fake
async def test_fake_org_refresh_token_grant(fake_sf: tuple[FakeSalesforce, str]) -> None:
    fake, url = fake_sf
    assert fake.refresh_token is not None
    async with httpx.AsyncClient(timeout=10) as http:
        auth = SalesforceAuth(http, url, fake.client_id, fake.client_secret, fake.refresh_token)
        client = SalesforceClient(auth, http, "62.0")
        assert await client.find_by_emails(["a@x.com"], {}) == {}
        fake.revoke_refresh_token()
        fake.expire_tokens()
        with pytest.raises(PermanentError, match="invalid_grant") as caught:
            await client.find_by_emails(["a@x.com"], {})
        assert fake.client_secret not in str(caught.value)
