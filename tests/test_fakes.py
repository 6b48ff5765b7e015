"""The fake HubSpot and Salesforce servers behave like the references say, so e2e tests can
trust them."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes import FakeHubSpot, FakeSalesforce, FakeServer, running
from fakes.hubspot import create_hubspot_app
from fakes.salesforce import create_salesforce_app, normalize_id

API = "/services/data/v62.0"
SF_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
HS_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
CONTACTS = "/crm/v3/objects/contacts"


# -- fixtures ------------------------------------------------------------------------------------


# One server per platform for the module; each test swaps in a fresh fake (FakeServer.app).


@pytest.fixture(scope="module")
def sf_server() -> Iterator[FakeServer]:
    with running(create_salesforce_app(FakeSalesforce())) as server:
        yield server


@pytest.fixture
def sf(sf_server: FakeServer) -> FakeSalesforce:
    fake = FakeSalesforce()
    sf_server.app = create_salesforce_app(fake)
    return fake


@pytest.fixture
def sf_http(sf: FakeSalesforce, sf_server: FakeServer) -> Iterator[httpx.Client]:
    """A client that already holds a token from the client-credentials grant."""
    with httpx.Client(base_url=sf_server.url, timeout=5) as client:
        answer = client.post(
            "/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": sf.client_id,
                "client_secret": sf.client_secret,
            },
        )
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield client


@pytest.fixture(scope="module")
def hs_server() -> Iterator[FakeServer]:
    with running(create_hubspot_app(FakeHubSpot())) as server:
        yield server


@pytest.fixture
def hs(hs_server: FakeServer) -> FakeHubSpot:
    fake = FakeHubSpot(shuffle_batch_results=False)
    hs_server.app = create_hubspot_app(fake)
    return fake


@pytest.fixture
def hs_http(hs: FakeHubSpot, hs_server: FakeServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {hs.access_token}"}
    with httpx.Client(base_url=hs_server.url, headers=headers, timeout=5) as client:
        yield client


def soql(client: httpx.Client, query: str) -> httpx.Response:
    return client.get(f"{API}/query", params={"q": query})


def lead(**fields: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Lead"}, "LastName": "Doe", "Company": "Acme", **fields}


# -- server --------------------------------------------------------------------------------------


def test_server_serves_on_a_free_port_and_stops() -> None:
    server = FakeServer(create_salesforce_app(FakeSalesforce()))
    with server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
        assert httpx.get(f"{server.url}/services/data/").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/services/data/", timeout=1)


def test_stop_does_not_wait_for_a_held_request(sf: FakeSalesforce) -> None:
    sf.delay_next(30, path="/services/data")
    server = FakeServer(create_salesforce_app(sf)).start()
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{server.url}/services/data/", timeout=0.3)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5


# -- Salesforce: OAuth ---------------------------------------------------------------------------


def test_sf_client_credentials_token(sf: FakeSalesforce, sf_server: FakeServer) -> None:
    answer = httpx.post(
        f"{sf_server.url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sf-client-id",
            "client_secret": "sf-client-secret",
        },
    )
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) >= {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
    }
    assert "expires_in" not in body and "refresh_token" not in body
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == sf_server.url
    assert body["id"].endswith(f"/id/{sf.org_id}/0055g00000IntgUAAQ")
    assert body["issued_at"].isdigit() and len(body["issued_at"]) == 13  # epoch milliseconds


def test_sf_token_with_basic_auth_and_refresh_grant(
    sf: FakeSalesforce, sf_server: FakeServer
) -> None:
    basic = base64.b64encode(b"sf-client-id:sf-client-secret").decode()
    answer = httpx.post(
        f"{sf_server.url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert answer.status_code == 200
    refreshed = httpx.post(
        f"{sf_server.url}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "sf-refresh-token",
            "client_id": "sf-client-id",
            "client_secret": "sf-client-secret",
        },
    )
    assert refreshed.status_code == 200
    assert refreshed.json()["access_token"] in sf.valid_tokens


@pytest.mark.parametrize(
    ("form", "error"),
    [
        (
            {
                "grant_type": "client_credentials",
                "client_id": "sf-client-id",
                "client_secret": "nope",
            },
            "invalid_client",
        ),
        (
            {"grant_type": "client_credentials", "client_id": "who", "client_secret": "x"},
            "invalid_client_id",
        ),
        (
            {"grant_type": "refresh_token", "client_id": "sf-client-id", "refresh_token": "old"},
            "invalid_grant",
        ),
        ({"grant_type": "password", "client_id": "sf-client-id"}, "unsupported_grant_type"),
    ],
)
def test_sf_token_errors(
    sf: FakeSalesforce, sf_server: FakeServer, form: dict[str, str], error: str
) -> None:
    answer = httpx.post(f"{sf_server.url}/services/oauth2/token", data=form)
    assert answer.status_code == 400
    assert answer.json()["error"] == error
    assert answer.json()["error_description"]


def test_sf_expired_session_gets_401_until_a_new_token(
    sf: FakeSalesforce, sf_http: httpx.Client
) -> None:
    assert soql(sf_http, "SELECT Id FROM Lead").status_code == 200
    sf.expire_tokens()
    answer = soql(sf_http, "SELECT Id FROM Lead")
    assert answer.status_code == 401
    assert answer.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    sf_http.headers["Authorization"] = f"Bearer {sf.issue_token()}"
    assert soql(sf_http, "SELECT Id FROM Lead").status_code == 200


def test_sf_instance_url_can_point_elsewhere(sf: FakeSalesforce, sf_server: FakeServer) -> None:
    sf.instance_url = "https://acme.my.salesforce.com"
    answer = httpx.post(
        f"{sf_server.url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sf-client-id",
            "client_secret": "sf-client-secret",
        },
    )
    assert answer.json()["instance_url"] == "https://acme.my.salesforce.com"


def test_sf_versions(sf: FakeSalesforce, sf_server: FakeServer) -> None:
    versions = httpx.get(f"{sf_server.url}/services/data/").json()
    assert {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"} in versions
    assert versions[0]["version"] == "31.0" and versions[-1]["version"] == "67.0"


# -- Salesforce: single records ------------------------------------------------------------------


def test_sf_create_get_and_update_a_lead(sf: FakeSalesforce, sf_http: httpx.Client) -> None:
    created = sf_http.post(
        f"{API}/sobjects/Lead",
        json={"LastName": "Lovelace", "Company": "Engines", "Email": "Ada@Example.com"},
    )
    assert created.status_code == 201
    body = created.json()
    assert body["success"] is True and body["errors"] == []
    lead_id = body["id"]
    assert len(lead_id) == 18 and lead_id.startswith("00Q") and normalize_id(lead_id) == lead_id

    record = sf_http.get(f"{API}/sobjects/Lead/{lead_id}").json()
    assert record["attributes"] == {"type": "Lead", "url": f"{API}/sobjects/Lead/{lead_id}"}
    assert record["Email"] == "Ada@Example.com" and record["Status"] == "Open - Not Contacted"
    assert record["Name"] == "Lovelace" and record["IsConverted"] is False
    assert SF_DATETIME.match(record["CreatedDate"])
    assert record["CreatedDate"] == record["LastModifiedDate"] == record["SystemModstamp"]

    updated = sf_http.patch(
        f"{API}/sobjects/Lead/{lead_id}", json={"FirstName": "Ada", "Title": ""}
    )
    assert updated.status_code == 204 and updated.content == b""
    after = sf.get(lead_id)
    assert after is not None
    assert (
        after["FirstName"] == "Ada" and after["Title"] is None and after["Name"] == "Ada Lovelace"
    )
    assert after["LastModifiedDate"] > record["LastModifiedDate"]
    only = sf_http.get(
        f"{API}/sobjects/Lead/{lead_id[:15]}", params={"fields": "Email,FirstName"}
    ).json()
    assert only == {
        "attributes": record["attributes"],
        "Email": "Ada@Example.com",
        "FirstName": "Ada",
    }
    assert sf.write_calls == 2 and sf.records_per_write_call == [1, 1]


def test_sf_required_fields(sf_http: httpx.Client) -> None:
    answer = sf_http.post(f"{API}/sobjects/Lead", json={"Email": "x@example.com"})
    assert answer.status_code == 400
    assert answer.json() == [
        {
            "message": "Required fields are missing: [LastName, Company]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["LastName", "Company"],
        }
    ]
    contact = sf_http.post(
        f"{API}/sobjects/Contact", json={"FirstName": "No", "Email": "y@example.com"}
    )
    assert contact.json() == [
        {
            "message": "Required fields are missing: [LastName]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["LastName"],
        }
    ]
    created = sf_http.post(f"{API}/sobjects/Contact", json={"LastName": "Hopper"})
    assert created.status_code == 201 and created.json()["id"].startswith("003")


def test_sf_field_validation(sf_http: httpx.Client) -> None:
    unknown = sf_http.post(f"{API}/sobjects/Lead", json={"LastName": "X", "Company": "Y", "Foo": 1})
    assert unknown.status_code == 400 and unknown.json()[0]["errorCode"] == "INVALID_FIELD"
    bad_email = sf_http.post(
        f"{API}/sobjects/Lead", json={"LastName": "X", "Company": "Y", "Email": "nope"}
    )
    assert bad_email.json()[0]["errorCode"] == "INVALID_EMAIL_ADDRESS"
    assert bad_email.json()[0]["fields"] == ["Email"]
    too_long = sf_http.post(f"{API}/sobjects/Contact", json={"LastName": "x" * 81})
    assert too_long.json()[0]["errorCode"] == "STRING_TOO_LONG"
    read_only = sf_http.post(f"{API}/sobjects/Contact", json={"LastName": "X", "Name": "X"})
    assert read_only.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    not_json = sf_http.post(
        f"{API}/sobjects/Contact", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400 and not_json.json()[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_sf_unknown_deleted_and_converted_records(
    sf: FakeSalesforce, sf_http: httpx.Client
) -> None:
    missing = sf_http.patch(f"{API}/sobjects/Contact/003000000000000AAA", json={"LastName": "X"})
    assert missing.status_code == 404
    assert missing.json() == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]
    lead_id = sf.add_record("Lead", LastName="Old", Company="Co", Email="old@example.com")
    wrong_type = sf_http.get(f"{API}/sobjects/Contact/{lead_id}")
    assert wrong_type.status_code == 404

    contact_id = sf.convert_lead(lead_id)
    assert sf.get(contact_id) is not None and sf.get(contact_id)["Email"] == "old@example.com"  # type: ignore[index]
    frozen = sf_http.patch(f"{API}/sobjects/Lead/{lead_id}", json={"FirstName": "New"})
    assert (
        frozen.status_code == 400
        and frozen.json()[0]["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"
    )

    sf.delete_record(contact_id)
    gone = sf_http.get(f"{API}/sobjects/Contact/{contact_id}")
    assert gone.status_code == 404 and gone.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    assert (
        soql(sf_http, f"SELECT Id FROM Contact WHERE Id = '{contact_id}'").json()["totalSize"] == 0
    )


# -- Salesforce: SOQL ----------------------------------------------------------------------------


def test_sf_query_by_email_is_case_insensitive(sf: FakeSalesforce, sf_http: httpx.Client) -> None:
    first = sf.add_record("Lead", LastName="A", Company="C", Email="Dup@Example.com")
    second = sf.add_record("Lead", LastName="B", Company="C", Email="dup@example.com")
    sf.add_record("Lead", LastName="C", Company="C", Email="other@example.com")
    sf.update_record(first, Title="touched")  # now the most recently modified

    answer = soql(
        sf_http,
        "SELECT Id, Email, LastModifiedDate FROM Lead WHERE Email = 'DUP@example.COM' "
        "ORDER BY LastModifiedDate DESC LIMIT 10",
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["totalSize"] == 2 and body["done"] is True
    assert [r["Id"] for r in body["records"]] == [first, second]
    assert body["records"][0] == {
        "attributes": {"type": "Lead", "url": f"{API}/sobjects/Lead/{first}"},
        "Id": first,
        "Email": "Dup@Example.com",
        "LastModifiedDate": sf.get(first)["LastModifiedDate"],  # type: ignore[index]
    }
    latest = soql(
        sf_http,
        "select Id from lead where email = 'dup@example.com' "
        "order by LastModifiedDate desc limit 1",
    )
    assert [r["Id"] for r in latest.json()["records"]] == [first]


def test_sf_query_in_lists_ids_and_escaping(sf: FakeSalesforce, sf_http: httpx.Client) -> None:
    a = sf.add_record("Contact", LastName="O'Brien", Email="o'brien@example.com")
    b = sf.add_record("Contact", LastName="B", Email="b@example.com")
    sf.add_record("Contact", LastName="C", Email="c@example.com")

    by_email = soql(
        sf_http, r"SELECT Id FROM Contact WHERE Email IN ('O\'Brien@example.com', 'B@EXAMPLE.COM')"
    )
    assert {r["Id"] for r in by_email.json()["records"]} == {a, b}
    by_ids = soql(sf_http, f"SELECT Id, LastName FROM Contact WHERE Id IN ('{a}', '{b[:15]}')")
    assert {r["LastName"] for r in by_ids.json()["records"]} == {"O'Brien", "B"}
    one = soql(sf_http, f"SELECT Email FROM Contact WHERE Id = '{a}'").json()["records"]
    assert one == [
        {
            "attributes": {"type": "Contact", "url": f"{API}/sobjects/Contact/{a}"},
            "Email": "o'brien@example.com",
        }
    ]
    grouped = soql(
        sf_http,
        "SELECT Id FROM Contact WHERE (Email = 'b@example.com' OR Email = 'c@example.com') "
        "AND LastName != 'C'",
    )
    assert [r["Id"] for r in grouped.json()["records"]] == [b]
    since = soql(
        sf_http,
        "SELECT Id FROM Contact WHERE LastModifiedDate > 2000-01-01T00:00:00Z "
        "AND HasOptedOutOfEmail = false",
    )
    assert since.json()["totalSize"] == 3


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("SELECT Id FROM Lead WHERE Email = 'unterminated", "MALFORMED_QUERY"),
        (
            "SELECT Id FROM Lead WHERE Email = 'a' AND LastName = 'b' OR Company = 'c'",
            "MALFORMED_QUERY",
        ),
        ("SELECT Id FROM Lead WHERE Email IN ()", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE Email = a@example.com", "MALFORMED_QUERY"),
        ("SELECT Id, Id FROM Lead", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE Email == 'a'", "MALFORMED_QUERY"),
        ("DELETE FROM Lead", "MALFORMED_QUERY"),
        ("", "MALFORMED_QUERY"),
        ("SELECT Id, Emial FROM Lead", "INVALID_FIELD"),
        ("SELECT Id FROM Leads", "INVALID_TYPE"),
        ("SELECT Id FROM Lead WHERE IsConverted = 'false'", "INVALID_QUERY_FILTER_OPERATOR"),
        ("SELECT Id FROM Lead WHERE Email = 5", "INVALID_QUERY_FILTER_OPERATOR"),
        ("SELECT Id FROM Lead WHERE Id = 'not-an-id'", "INVALID_QUERY_FILTER_OPERATOR"),
        (
            "SELECT Id FROM Lead WHERE LastModifiedDate > '2026-01-01'",
            "INVALID_QUERY_FILTER_OPERATOR",
        ),
    ],
)
def test_sf_query_refuses_what_salesforce_refuses(
    sf_http: httpx.Client, query: str, code: str
) -> None:
    answer = soql(sf_http, query)
    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == code


# -- Salesforce: sObject Collections -------------------------------------------------------------


def test_sf_collection_create_reports_per_record_results_in_order(
    sf: FakeSalesforce, sf_http: httpx.Client
) -> None:
    records = [
        lead(Email="a@example.com"),
        lead(LastName=None),
        {"attributes": {"type": "Contact"}, "LastName": "C"},
    ]
    answer = sf_http.post(
        f"{API}/composite/sobjects", json={"allOrNone": False, "records": records}
    )
    assert answer.status_code == 200
    first, second, third = answer.json()
    assert first["success"] is True and first["id"].startswith("00Q") and first["errors"] == []
    assert second == {
        "success": False,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [LastName]",
                "fields": ["LastName"],
            }
        ],
    }
    assert third["success"] is True and third["id"].startswith("003")
    assert set(sf.records) == {first["id"], third["id"]}
    assert sf.writes[-1].operation == "create" and sf.records_per_write_call == [3]


def test_sf_collection_all_or_none_rolls_back(sf: FakeSalesforce, sf_http: httpx.Client) -> None:
    answer = sf_http.post(
        f"{API}/composite/sobjects",
        json={"allOrNone": True, "records": [lead(Email="a@example.com"), lead(Email="bad")]},
    )
    first, second = answer.json()
    assert first == {
        "success": False,
        "errors": [
            {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the request "
                "was using AllOrNone header",
                "fields": [],
            }
        ],
    }
    assert second["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS"
    assert sf.records == {}


def test_sf_collection_update(sf: FakeSalesforce, sf_http: httpx.Client) -> None:
    a = sf.add_record("Lead", LastName="A", Company="C")
    b = sf.add_record("Contact", LastName="B")
    before = sf.get(a)["LastModifiedDate"]  # type: ignore[index]
    records = [
        {"attributes": {"type": "Lead"}, "id": a, "Email": "a@example.com"},
        {"attributes": {"type": "Contact"}, "Id": b, "LastName": ""},
        {"attributes": {"type": "Contact"}, "Id": a, "LastName": "Z"},
        {"attributes": {"type": "Contact"}, "LastName": "no id"},
    ]
    answer = sf_http.patch(
        f"{API}/composite/sobjects", json={"allOrNone": False, "records": records}
    )
    assert answer.status_code == 200
    ok, blank, wrong, no_id = answer.json()
    assert ok == {"id": a, "success": True, "errors": []}
    assert blank["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert wrong["errors"][0]["statusCode"] == "MALFORMED_ID"
    assert no_id["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    assert sf.get(a)["Email"] == "a@example.com"  # type: ignore[index]
    assert sf.get(a)["LastModifiedDate"] > before  # type: ignore[index]
    assert sf.get(b)["LastName"] == "B"  # type: ignore[index]
    assert sf.writes[-1].operation == "update"


def test_sf_collection_limit_is_200(sf: FakeSalesforce, sf_http: httpx.Client) -> None:
    too_many = sf_http.post(
        f"{API}/composite/sobjects", json={"records": [lead() for _ in range(201)]}
    )
    assert too_many.status_code == 400
    assert too_many.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert sf.records == {}
    just_right = sf_http.post(
        f"{API}/composite/sobjects", json={"records": [lead() for _ in range(200)]}
    )
    assert just_right.status_code == 200 and all(r["success"] for r in just_right.json())
    assert len(sf.records) == 200
    assert sf.records_per_write_call == [201, 200]


def test_sf_collection_requires_a_type(sf_http: httpx.Client) -> None:
    answer = sf_http.post(f"{API}/composite/sobjects", json={"records": [{"LastName": "X"}]})
    assert answer.status_code == 400 and answer.json()[0]["errorCode"] == "INVALID_TYPE"


# -- Salesforce: injected record errors and faults -----------------------------------------------


def test_sf_reject_records_and_row_locks(sf: FakeSalesforce, sf_http: httpx.Client) -> None:
    sf.reject_records(lambda r: r.get("LastName") == "Invalid", message="Last name is not allowed")
    answer = sf_http.post(
        f"{API}/composite/sobjects", json={"records": [lead(LastName="Invalid"), lead()]}
    )
    bad, good = answer.json()
    assert bad["errors"] == [
        {
            "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "message": "Last name is not allowed",
            "fields": [],
        }
    ]
    assert good["success"] is True
    single = sf_http.post(f"{API}/sobjects/Lead", json={"LastName": "Invalid", "Company": "C"})
    assert (
        single.status_code == 400
        and single.json()[0]["errorCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    )

    sf.lock_rows(times=1)
    locked = sf_http.patch(f"{API}/sobjects/Lead/{good['id']}", json={"FirstName": "X"})
    assert locked.status_code == 400 and locked.json()[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"
    retried = sf_http.patch(f"{API}/sobjects/Lead/{good['id']}", json={"FirstName": "X"})
    assert retried.status_code == 204


def test_sf_duplicate_rule_blocks_creating_a_second_email(sf_http: httpx.Client) -> None:
    sf = FakeSalesforce(block_duplicate_emails=True)
    with running(create_salesforce_app(sf)) as server:
        sf_http.base_url = httpx.URL(server.url)
        sf_http.headers["Authorization"] = f"Bearer {sf.issue_token()}"
        existing = sf.add_record("Contact", LastName="A", Email="a@example.com")
        single = sf_http.post(
            f"{API}/sobjects/Lead", json={"LastName": "B", "Company": "C", "Email": "A@example.com"}
        )
        assert single.status_code == 400
        error = single.json()[0]
        assert (
            error["errorCode"] == "DUPLICATES_DETECTED"
            and error["message"] == "Use one of these records?"
        )
        match = error["duplicateResult"]["matchResults"][0]["matchRecords"][0]["record"]
        assert match["Id"] == existing
        batch = sf_http.post(
            f"{API}/composite/sobjects", json={"records": [lead(Email="a@example.com")]}
        )
        assert batch.json()[0]["errors"][0]["statusCode"] == "DUPLICATES_DETECTED"
        assert len(sf.find_by_email("a@example.com")) == 1


def test_sf_fail_next_with_retry_after(sf: FakeSalesforce, sf_http: httpx.Client) -> None:
    sf.fail_next(2, status=503, headers={"Retry-After": "1"}, path="/composite/sobjects")
    for _ in range(2):
        answer = sf_http.post(f"{API}/composite/sobjects", json={"records": [lead()]})
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
        assert answer.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
    assert sf_http.post(f"{API}/composite/sobjects", json={"records": [lead()]}).status_code == 200
    assert sf.write_calls == 1  # faulted calls never reach the org
    assert [r.faulted for r in sf.requests_to("/composite/sobjects")] == [True, True, False]


def test_sf_faults_skip_the_token_endpoint_unless_targeted(
    sf: FakeSalesforce, sf_server: FakeServer
) -> None:
    sf.fail_next(1, status=500)
    form = {
        "grant_type": "client_credentials",
        "client_id": "sf-client-id",
        "client_secret": "sf-client-secret",
    }
    assert httpx.post(f"{sf_server.url}/services/oauth2/token", data=form).status_code == 200
    sf.clear_faults()
    sf.fail_next(1, status=503, path="/services/oauth2/token", body="<html>down</html>")
    answer = httpx.post(f"{sf_server.url}/services/oauth2/token", data=form)
    assert answer.status_code == 503 and answer.text == "<html>down</html>"


def test_sf_request_limit_and_usage_header(sf: FakeSalesforce, sf_http: httpx.Client) -> None:
    ok = soql(sf_http, "SELECT Id FROM Lead")
    assert ok.headers["Sforce-Limit-Info"] == "api-usage=1/100000"
    sf.request_limit_exceeded()
    refused = soql(sf_http, "SELECT Id FROM Lead")
    assert refused.status_code == 403
    assert refused.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    sf.daily_api_limit = 2
    assert soql(sf_http, "SELECT Id FROM Lead").status_code == 200
    assert soql(sf_http, "SELECT Id FROM Lead").json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_sf_delay_next_times_out_a_client(sf: FakeSalesforce, sf_http: httpx.Client) -> None:
    sf.delay_next(1.0, path="/query")
    with pytest.raises(httpx.ReadTimeout):
        sf_http.get(f"{API}/query", params={"q": "SELECT Id FROM Lead"}, timeout=0.2)
    assert soql(sf_http, "SELECT Id FROM Lead").status_code == 200


def test_fail_rate_is_reproducible(sf: FakeSalesforce, sf_http: httpx.Client) -> None:
    def run() -> list[int]:
        sf.fail_rate(0.5, seed=7, statuses=[500, 503])
        return [soql(sf_http, "SELECT Id FROM Lead").status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert set(first) == {200, 500, 503}
    sf.fail_rate(0)
    assert soql(sf_http, "SELECT Id FROM Lead").status_code == 200


def test_sf_requests_are_logged(sf: FakeSalesforce, sf_http: httpx.Client) -> None:
    sf_http.post(f"{API}/sobjects/Contact", json={"LastName": "Log"})
    entry = sf.requests_to("/sobjects/Contact", "POST")[0]
    assert entry.json == {"LastName": "Log"} and entry.status == 201
    assert entry.headers["authorization"].startswith("Bearer ")
    assert sf.requests[0].form["grant_type"] == "client_credentials"


# -- HubSpot: auth -------------------------------------------------------------------------------


def test_hs_refresh_token_flow(hs: FakeHubSpot, hs_server: FakeServer) -> None:
    form = {
        "grant_type": "refresh_token",
        "client_id": "hs-client-id",
        "client_secret": "hs-client-secret",
        "refresh_token": "hs-refresh-token",
    }
    answer = httpx.post(f"{hs_server.url}/oauth/v1/token", data=form)
    assert answer.status_code == 200
    body = answer.json()
    assert body["expires_in"] == 1800 and body["token_type"] == "bearer"
    assert body["refresh_token"] == "hs-refresh-token"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert httpx.get(f"{hs_server.url}{CONTACTS}", headers=headers).status_code == 200

    hs.expire_tokens()
    expired = httpx.get(f"{hs_server.url}{CONTACTS}", headers=headers)
    assert expired.status_code == 401 and expired.json()["category"] == "EXPIRED_AUTHENTICATION"
    assert re.match(
        r"The OAuth token used to make this call expired \d+ second\(s\) ago\.",
        expired.json()["message"],
    )

    bad = httpx.post(f"{hs_server.url}/oauth/v1/token", data={**form, "refresh_token": "stale"})
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_grant" and bad.json()["status"] == "BAD_REFRESH_TOKEN"
    wrong_client = httpx.post(
        f"{hs_server.url}/oauth/v1/token", data={**form, "client_secret": "x"}
    )
    assert wrong_client.status_code == 400


def test_hs_bad_token(hs: FakeHubSpot, hs_server: FakeServer) -> None:
    answer = httpx.get(f"{hs_server.url}{CONTACTS}/1", headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401
    body = answer.json()
    assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION"
    assert body["message"].startswith("Authentication credentials not found.")
    assert body["correlationId"]
    assert httpx.get(f"{hs_server.url}{CONTACTS}").status_code == 401


# -- HubSpot: contacts ---------------------------------------------------------------------------


def test_hs_batch_create_and_read(hs: FakeHubSpot, hs_http: httpx.Client) -> None:
    created = hs_http.post(
        f"{CONTACTS}/batch/create",
        json={
            "inputs": [
                {"properties": {"email": "Ada@Example.com", "firstname": "Ada", "numemployees": 12}}
            ]
        },
    )
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "COMPLETE" and HS_DATETIME.match(body["startedAt"])
    (contact,) = body["results"]
    assert contact["archived"] is False and HS_DATETIME.match(contact["createdAt"])
    props = contact["properties"]
    assert props["email"] == "ada@example.com"  # HubSpot stores emails in lower case
    assert props["numemployees"] == "12"  # every value is a string
    assert props["hs_object_id"] == contact["id"] and props["createdate"] == contact["createdAt"]
    assert props["lastmodifieddate"] == contact["updatedAt"]

    single = hs_http.get(
        f"{CONTACTS}/{contact['id']}", params={"properties": "email,phone,nonexistent"}
    )
    assert single.status_code == 200
    assert single.json()["properties"] == {
        "email": "ada@example.com",
        "phone": None,
        "createdate": contact["createdAt"],
        "hs_object_id": contact["id"],
        "lastmodifieddate": contact["updatedAt"],
    }
    default = hs_http.get(f"{CONTACTS}/{contact['id']}").json()["properties"]
    assert set(default) == {
        "email",
        "firstname",
        "lastname",
        "createdate",
        "hs_object_id",
        "lastmodifieddate",
    }
    by_email = hs_http.get(f"{CONTACTS}/ADA@example.com", params={"idProperty": "email"})
    assert by_email.json()["id"] == contact["id"]

    missing = hs_http.get(f"{CONTACTS}/999")
    assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"

    read = hs_http.post(
        f"{CONTACTS}/batch/read",
        json={"properties": ["email"], "inputs": [{"id": contact["id"]}, {"id": "999"}]},
    )
    assert read.status_code == 207
    assert [r["id"] for r in read.json()["results"]] == [contact["id"]]
    assert read.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert read.json()["errors"][0]["context"] == {"ids": ["999"]}
    by_emails = hs_http.post(
        f"{CONTACTS}/batch/read",
        json={"idProperty": "email", "inputs": [{"id": "ada@example.com"}]},
    )
    assert by_emails.status_code == 200 and by_emails.json()["results"][0]["id"] == contact["id"]
    assert hs.write_calls == 1 and hs.inputs_per_write_call == [1]


def test_hs_batch_create_conflict_fails_the_whole_batch(
    hs: FakeHubSpot, hs_http: httpx.Client
) -> None:
    first = hs.add_contact(email="one@example.com")
    second = hs.add_contact(email="two@example.com")
    answer = hs_http.post(
        f"{CONTACTS}/batch/create",
        json={
            "inputs": [
                {"properties": {"email": "new@example.com"}},
                {"properties": {"email": "ONE@example.com"}},
                {"properties": {"email": "two@example.com"}},
            ]
        },
    )
    assert answer.status_code == 409
    body = answer.json()
    assert body["message"] == f"Contact already exists. Existing ID: {first}"  # only the first
    assert body["category"] == "CONFLICT" and body["status"] == "error" and body["correlationId"]
    assert set(hs.contacts) == {first, second}


def test_hs_batch_create_multi_status_with_trace_ids(
    hs: FakeHubSpot, hs_http: httpx.Client
) -> None:
    existing = hs.add_contact(email="one@example.com")
    answer = hs_http.post(
        f"{CONTACTS}/batch/create",
        json={
            "inputs": [
                {"properties": {"email": "new@example.com"}, "objectWriteTraceId": "a"},
                {"properties": {"email": "one@example.com"}, "objectWriteTraceId": "b"},
                {
                    "properties": {"email": "x@example.com", "favourite": "1"},
                    "objectWriteTraceId": "c",
                },
            ]
        },
    )
    assert answer.status_code == 207
    body = answer.json()
    assert [r["properties"]["email"] for r in body["results"]] == ["new@example.com"]
    conflict, invalid = body["errors"]
    assert conflict["category"] == "CONFLICT" and conflict["context"]["objectWriteTraceId"] == ["b"]
    assert conflict["message"] == f"Contact already exists. Existing ID: {existing}"
    assert (
        invalid["category"] == "VALIDATION_ERROR" and "PROPERTY_DOESNT_EXIST" in invalid["message"]
    )
    assert body["numErrors"] == 2


def test_hs_batch_limit_is_100(hs: FakeHubSpot, hs_http: httpx.Client) -> None:
    inputs = [{"properties": {"email": f"c{i}@example.com"}} for i in range(101)]
    answer = hs_http.post(f"{CONTACTS}/batch/create", json={"inputs": inputs})
    assert answer.status_code == 400
    assert answer.json()["message"] == (
        "The maximum number of inputs supported in a batch is 100. "
        "Please reduce the number of items and try again"
    )
    assert answer.json()["category"] == "VALIDATION_ERROR"
    assert (
        hs_http.post(f"{CONTACTS}/batch/create", json={"inputs": inputs[:100]}).status_code == 201
    )
    assert len(hs.contacts) == 100 and hs.inputs_per_write_call == [101, 100]


def test_hs_batch_update(hs: FakeHubSpot, hs_http: httpx.Client) -> None:
    a = hs.add_contact(email="a@example.com", firstname="A")
    b = hs.add_contact(email="b@example.com")
    before = hs.get_contact(a)["updatedAt"]  # type: ignore[index]
    ok = hs_http.post(
        f"{CONTACTS}/batch/update",
        json={"inputs": [{"id": a, "properties": {"firstname": "", "lastname": "Z"}}]},
    )
    assert ok.status_code == 200
    assert ok.json()["results"][0]["properties"]["firstname"] is None
    assert hs.contacts[a].get("firstname") is None and hs.contacts[a]["lastname"] == "Z"
    assert hs.get_contact(a)["updatedAt"] > before  # type: ignore[index]

    partial = hs_http.post(
        f"{CONTACTS}/batch/update",
        json={
            "inputs": [
                {"id": b, "properties": {"lastname": "B"}},
                {"id": "404", "properties": {"lastname": "X"}},
            ]
        },
    )
    assert (
        partial.status_code == 207 and partial.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    )
    assert hs.contacts[b]["lastname"] == "B"

    invalid = hs_http.post(
        f"{CONTACTS}/batch/update",
        json={
            "inputs": [
                {"id": b, "properties": {"lastname": "C"}},
                {"id": a, "properties": {"lifecyclestage": "Lead"}},
            ]
        },
    )
    assert invalid.status_code == 400 and "INVALID_OPTION" in invalid.json()["message"]
    assert hs.contacts[b]["lastname"] == "B"  # nothing applied

    clash = hs_http.post(
        f"{CONTACTS}/batch/update",
        json={"inputs": [{"id": b, "properties": {"email": "A@example.com"}}]},
    )
    assert (
        clash.status_code == 409
        and clash.json()["message"] == f"Contact already exists. Existing ID: {a}"
    )
    twice = hs_http.post(
        f"{CONTACTS}/batch/update",
        json={
            "inputs": [
                {"id": a, "properties": {"lastname": "1"}},
                {"id": a, "properties": {"lastname": "2"}},
            ]
        },
    )
    assert twice.status_code == 400 and twice.json()["message"].startswith(
        "Duplicate IDs found in batch input"
    )
    read_only = hs_http.post(
        f"{CONTACTS}/batch/update",
        json={"inputs": [{"id": a, "properties": {"hs_object_id": "1"}}]},
    )
    assert read_only.status_code == 400 and "READ_ONLY_VALUE" in read_only.json()["message"]


def test_hs_batch_upsert_by_email(hs: FakeHubSpot, hs_http: httpx.Client) -> None:
    existing = hs.add_contact(email="known@example.com", firstname="K")
    answer = hs_http.post(
        f"{CONTACTS}/batch/upsert",
        json={
            "inputs": [
                {"id": "Known@Example.com", "idProperty": "email", "properties": {"phone": "+1"}},
                {
                    "id": "fresh@example.com",
                    "idProperty": "email",
                    "properties": {"firstname": "F"},
                },
            ]
        },
    )
    assert answer.status_code == 200
    by_email = {
        r["properties"].get("email") or hs.contacts[r["id"]]["email"]: r
        for r in answer.json()["results"]
    }
    assert (
        by_email["known@example.com"]["id"] == existing
        and by_email["known@example.com"]["new"] is False
    )
    assert by_email["fresh@example.com"]["new"] is True
    assert hs.contacts[existing]["phone"] == "+1"
    assert hs.find_by_email("FRESH@example.com")["properties"]["firstname"] == "F"  # type: ignore[index]
    assert hs.writes[-1].operation == "upsert"


def test_hs_list_paging(hs: FakeHubSpot, hs_http: httpx.Client) -> None:
    ids = [hs.add_contact(email=f"p{i}@example.com") for i in range(25)]
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        params = {"limit": "10", "properties": "email"} | ({"after": after} if after else {})
        body = hs_http.get(CONTACTS, params=params).json()
        seen += [r["id"] for r in body["results"]]
        pages += 1
        after = body.get("paging", {}).get("next", {}).get("after")
        if not after:
            break
    assert seen == ids and pages == 3
    assert hs_http.get(CONTACTS, params={"limit": "101"}).status_code == 400


def test_hs_search(hs: FakeHubSpot, hs_http: httpx.Client) -> None:
    a = hs.add_contact(email="a@example.com", firstname="Ann")
    b = hs.add_contact(email="b@example.com", firstname="Bob")
    hs.add_contact(email="c@example.com")

    def search(body: dict[str, Any]) -> httpx.Response:
        return hs_http.post(f"{CONTACTS}/search", json=body)

    eq = search(
        {
            "filterGroups": [
                {"filters": [{"propertyName": "email", "operator": "EQ", "value": "A@Example.com"}]}
            ]
        }
    )
    assert eq.status_code == 200 and eq.json()["total"] == 1
    result = eq.json()["results"][0]
    assert result["id"] == a
    assert set(result["properties"]) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }
    assert "X-HubSpot-RateLimit-Max" not in eq.headers

    many = search(
        {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "email",
                            "operator": "IN",
                            "values": ["a@example.com", "b@example.com"],
                        }
                    ]
                }
            ]
        }
    )
    assert {r["id"] for r in many.json()["results"]} == {a, b}
    upper = search(
        {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "email", "operator": "IN", "values": ["A@EXAMPLE.COM"]}
                    ]
                }
            ]
        }
    )
    assert upper.json()["total"] == 0  # "values must be lowercase"
    either = search(
        {
            "filterGroups": [
                {"filters": [{"propertyName": "firstname", "operator": "EQ", "value": "bob"}]},
                {"filters": [{"propertyName": "firstname", "operator": "NOT_HAS_PROPERTY"}]},
            ],
            "properties": ["email"],
            "sorts": [{"propertyName": "email", "direction": "DESCENDING"}],
        }
    )
    assert [r["properties"]["email"] for r in either.json()["results"]] == [
        "c@example.com",
        "b@example.com",
    ]

    page = search({"limit": 2})
    assert page.json()["total"] == 3 and page.json()["paging"]["next"]["after"] == "2"
    rest = search({"limit": 2, "after": "2"})
    assert len(rest.json()["results"]) == 1 and "paging" not in rest.json()

    assert search({"limit": 201}).status_code == 400
    too_many_groups = {
        "filterGroups": [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}] * 6
    }
    assert search(too_many_groups).status_code == 400
    assert (
        search(
            {
                "filterGroups": [
                    {"filters": [{"propertyName": "email", "operator": "LIKE", "value": "a"}]}
                ]
            }
        ).status_code
        == 400
    )


def test_hs_search_index_lags() -> None:
    hs = FakeHubSpot(search_lag=0.5)
    with running(create_hubspot_app(hs)) as server:
        headers = {"Authorization": f"Bearer {hs.access_token}"}
        hs.add_contact(email="late@example.com")
        body = {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "email", "operator": "EQ", "value": "late@example.com"}
                    ]
                }
            ]
        }
        assert (
            httpx.post(f"{server.url}{CONTACTS}/search", json=body, headers=headers).json()["total"]
            == 0
        )
        time.sleep(0.6)
        assert (
            httpx.post(f"{server.url}{CONTACTS}/search", json=body, headers=headers).json()["total"]
            == 1
        )


def test_hs_rate_limits(hs: FakeHubSpot, hs_http: httpx.Client) -> None:
    hs.rate_limit_next(policy="TEN_SECONDLY_ROLLING", retry_after=1)
    limited = hs_http.get(CONTACTS)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    body = limited.json()
    assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    hs.rate_limit_next(policy="DAILY")
    daily = hs_http.get(CONTACTS).json()
    assert (
        daily["policyName"] == "DAILY" and daily["message"] == "You have reached your daily limit."
    )
    assert hs_http.get(CONTACTS).status_code == 200

    hs.burst_limit = 2
    first = hs_http.get(CONTACTS)
    assert first.headers["X-HubSpot-RateLimit-Max"] == "2"
    assert first.headers["X-HubSpot-RateLimit-Remaining"] == "1"
    assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert hs_http.get(CONTACTS).status_code == 200
    assert hs_http.get(CONTACTS).json()["policyName"] == "TEN_SECONDLY_ROLLING"


def test_hs_reject_contacts_and_faults(hs: FakeHubSpot, hs_http: httpx.Client) -> None:
    hs.reject_contacts(
        lambda p: p.get("lastname") == "Invalid", message="lastname is blocked", times=1
    )
    inputs = [{"properties": {"email": "x@example.com", "lastname": "Invalid"}}]
    refused = hs_http.post(f"{CONTACTS}/batch/create", json={"inputs": inputs})
    assert refused.status_code == 400 and refused.json()["message"] == "lastname is blocked"
    assert hs_http.post(f"{CONTACTS}/batch/create", json={"inputs": inputs}).status_code == 201

    hs.fail_next(1, status=502, path="/batch/")
    failed = hs_http.post(f"{CONTACTS}/batch/read", json={"inputs": []})
    assert failed.status_code == 502 and failed.json()["status"] == "error"
    assert hs_http.post(f"{CONTACTS}/batch/read", json={"inputs": []}).status_code == 200
    assert hs.write_calls == 2


def test_hs_batch_results_are_unordered_by_default() -> None:
    hs = FakeHubSpot(seed=1)
    with running(create_hubspot_app(hs)) as server:
        ids = [hs.add_contact(email=f"o{i}@example.com") for i in range(20)]
        answer = httpx.post(
            f"{server.url}{CONTACTS}/batch/read",
            json={"inputs": [{"id": i} for i in ids]},
            headers={"Authorization": f"Bearer {hs.access_token}"},
        )
        returned = [r["id"] for r in answer.json()["results"]]
        assert sorted(returned) == sorted(ids) and returned != ids
