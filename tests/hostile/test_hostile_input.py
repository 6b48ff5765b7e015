"""Hostile input against the real service process (issue 12): no request may freeze, bloat or
fool the service. Each attack asserts its answers, that /livez answers within 100 ms while it
runs, that the process's memory stays bounded, and that the store holds exactly what it held.

`test_<n>_…` are the numbered items of the issue; `test_refused_…` the classes of input that
were refused already and must stay refused."""

import base64
import hashlib
import hmac
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import httpx
import pytest
from hostile.conftest import (
    SALESFORCE_TOKEN,
    SEEDED_EMAIL,
    Clients,
    Store,
    base_env,
    log_entries,
)
from hostile.harness import (
    Watch,
    client_from,
    concurrently,
    own_address,
    raw_http,
    snapshot,
    status_of,
)
from sqlalchemy import Engine
from support.length_extension import extend
from support.service import (
    ADMIN_TOKEN,
    HUBSPOT_SECRET,
    ROOT,
    SALESFORCE_ORG_ID,
    Service,
    notification,
    outbound_message,
    property_change,
    salesforce_time,
    wait_until,
)

from syncgate.platforms.hubspot.signature import sign_v1, signed_headers

pytestmark = pytest.mark.e2e

SOAP_HEAD = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
    '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
)
SOAP_TAIL = "</notifications></soapenv:Body></soapenv:Envelope>"
SALESFORCE_URL = f"/webhooks/salesforce?token={SALESFORCE_TOKEN}"
OTHER_ORG = "00D000000000001AAA"
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
MEGABYTE = 1024 * 1024


def namespace_bomb(org_id: str) -> bytes:
    """Item 1 as reported: thousands of namespaces in scope and a megabyte of elements that each
    declare one more (each made the parser copy the whole scope)."""
    in_scope = "".join(f' xmlns:a{n}="u"' for n in range(28_000))
    return (
        f"<soapenv:Envelope{in_scope} "
        + SOAP_HEAD.removeprefix("<soapenv:Envelope ")
        + f"<OrganizationId>{org_id}</OrganizationId>"
        + '<b xmlns:x="u"/>' * 30_000
        + SOAP_TAIL
    ).encode()


def spread_namespace_bomb(org_id: str) -> bytes:
    """The same with every tag short: elements that each declare ten namespaces."""
    declaring = "<b" + "".join(f' xmlns:a{n}="u"' for n in range(10)) + "/>"
    return (
        SOAP_HEAD + f"<OrganizationId>{org_id}</OrganizationId>" + declaring * 6_000 + SOAP_TAIL
    ).encode()


def dearest_message(org_id: str) -> bytes:
    """As much as a message may hold: every cap nearly reached (100 Notifications of 200 fields,
    10,000 elements passed over), refused only by the last record id."""
    fields = "".join(f"<sf:F{n}>value {n}</sf:F{n}>" for n in range(199))
    notifications = "".join(
        f"<Notification><Id>04l1I{n:013d}</Id>"
        f'<sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"<sf:Id>{'not-an-id' if n == 99 else f'00Q5g{n:013d}'}</sf:Id>{fields}"
        "</sObject></Notification>"
        for n in range(100)
    )
    return (
        SOAP_HEAD
        + f"<OrganizationId>{org_id}</OrganizationId>"
        + "<b/>" * 9_990
        + notifications
        + SOAP_TAIL
    ).encode()


def post(http: httpx.Client, url: str, body: bytes, **kwargs: Any) -> Callable[[], httpx.Response]:
    return lambda: http.post(url, content=body, **kwargs)


def hubspot_headers(
    service: Service, body: bytes, timestamp_ms: int | None = None
) -> dict[str, str]:
    """Signed as HubSpot signs (v3 and v1) for the service's public URL."""
    stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    uri = f"{service.url}/webhooks/hubspot"
    return signed_headers(HUBSPOT_SECRET, "POST", uri, body, timestamp_ms=stamp)


# --- 1. one unauthenticated request froze everything --------------------------------------


def test_1_a_megabyte_of_namespaces_freezes_nothing(
    service: Service, store: Store, watch: Watch, clients: Clients
) -> None:
    before = store.snapshot()
    # The worst case: the attacker knows the token and the org id, so the message is parsed.
    insider, outsider = clients(service), clients(service)
    bombs = [namespace_bomb(SALESFORCE_ORG_ID), spread_namespace_bomb(SALESFORCE_ORG_ID)]
    assert all(len(bomb) <= MEGABYTE for bomb in bombs)
    attacks = [
        post(insider, SALESFORCE_URL, bombs[0]),
        post(insider, SALESFORCE_URL, bombs[1]),
        post(insider, SALESFORCE_URL, dearest_message(SALESFORCE_ORG_ID)),
        post(insider, SALESFORCE_URL, dearest_message(SALESFORCE_ORG_ID)),
        post(outsider, SALESFORCE_URL, namespace_bomb(OTHER_ORG)),
        post(outsider, "/webhooks/salesforce", bombs[0]),
    ]
    with watch.running():
        answers = concurrently(attacks)
    # Parsed off the event loop and refused; not parsed at all for another org or no token.
    assert [answer.status_code for answer in answers] == [400, 400, 400, 400, 403, 401]
    assert "a tag or comment is longer than 65536 bytes" in answers[0].text
    assert "more than 1000 namespace declarations" in answers[1].text
    assert "Notification #100 sObject Id is not a Salesforce id" in answers[2].text
    watch.assert_unharmed()
    assert store.snapshot() == before


# --- 2. no body limit outside the webhooks ----------------------------------------------------


def _head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _megabytes(count: int, chunked: bool = False) -> Iterator[bytes]:
    block = b"[" * MEGABYTE
    for _ in range(count):
        yield b"%x\r\n%s\r\n" % (len(block), block) if chunked else block
    if chunked:
        yield b"0\r\n\r\n"


def _form_fields(count: int) -> Iterator[bytes]:
    """Chunks of a urlencoded form: field after field of a megabyte each."""
    for number in range(count):
        field = b"&f%d=" % number + b"x" * MEGABYTE
        yield b"%x\r\n%s\r\n" % (len(field), field)
    yield b"0\r\n\r\n"


def test_2_oversized_bodies_are_refused_while_they_are_read(
    service: Service, store: Store, watch: Watch
) -> None:
    before = store.snapshot()
    address = own_address()
    json_head = {"Content-Type": "application/json"}
    attacks = [
        lambda: raw_http(
            service,
            _head(
                "POST",
                "/api/segments/preview",
                {**json_head, "Content-Length": str(100 * MEGABYTE)},
            ),
            _megabytes(100),
            address=address,
        ),
        lambda: raw_http(
            service,
            _head("POST", "/api/segments/preview", {**json_head, "Transfer-Encoding": "chunked"}),
            _megabytes(100, chunked=True),
            address=address,
        ),
        lambda: raw_http(
            service,
            _head(
                "POST",
                "/console/sign-in",
                {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Transfer-Encoding": "chunked",
                },
            ),
            _form_fields(100),
            address=address,
        ),
    ]
    with watch.running():
        answers = concurrently(attacks)
    assert [status_of(answer) for answer in answers] == [413, 413, 413]
    assert b'"code":"payload_too_large"' in answers[0].replace(b" ", b"")
    assert b"Too large" in answers[2]
    watch.assert_unharmed()
    assert store.snapshot() == before


# --- 3. Salesforce intake trusted anyone who knows the org id -----------------------------


@pytest.fixture(scope="module")
def replica(start_service: Callable[..., Service]) -> Service:
    """A second replica on the same database, shaped otherwise: no Salesforce webhook token, and
    only v3 HubSpot signatures."""
    return start_service(salesforce_webhook_token="", hubspot_require_v3="true")


def forged_lead(email: str) -> bytes:
    now = salesforce_time(time.time())
    lead = notification("Lead", "00Q5g000009EvilEAA", Email=email, LastName="Forged",
                        CreatedDate=now, LastModifiedDate=now)  # fmt: skip
    return outbound_message([lead])


def test_3_salesforce_intake_without_its_token_is_warned_about_at_start_up(
    service: Service, replica: Service, store: Store
) -> None:
    warnings = [
        entry
        for entry in log_entries(replica)
        if entry["level"] == "warning"
        and "SYNCGATE_SALESFORCE_WEBHOOK_TOKEN is not set" in entry["msg"]
    ]
    assert len(warnings) == 1 and "production requires it" in warnings[0]["msg"]
    assert not [e for e in log_entries(service) if "WEBHOOK_TOKEN is not set" in e["msg"]]
    # With the token set, knowing the org id and an email is not enough.
    before = store.snapshot()
    with client_from(service, own_address()) as attacker:
        forged = attacker.post("/webhooks/salesforce", content=forged_lead(SEEDED_EMAIL))
    assert forged.status_code == 401
    assert store.snapshot() == before


# --- 4. unthrottled guessing ------------------------------------------------------------------

PER_ADDRESS = 5
OVERALL = 12


@pytest.fixture(scope="module")
def throttled(start_service: Callable[..., Service]) -> Service:
    return start_service(
        auth_failures_per_address=str(PER_ADDRESS), auth_failures_global=str(OVERALL)
    )


def _sign_in(http: httpx.Client, token: str) -> httpx.Response:
    page = http.get("/console/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    return http.post("/console/sign-in", data={"token": token, "csrf": csrf.group(1), "next": ""})


def test_4_guessing_is_throttled_per_address_and_overall(
    throttled: Service, sync_engine: Engine, clients: Clients
) -> None:
    watch = Watch(throttled)
    attacker, operator = clients(throttled), clients(throttled)
    assert operator.get("/api/settings", headers=BEARER).status_code == 200  # default settings
    before = snapshot(sync_engine)
    with watch.running():
        guesses = [
            attacker.get("/api/settings", headers={"Authorization": f"Bearer guess-{n}"})
            for n in range(PER_ADDRESS - 1)
        ]
        guesses.append(_sign_in(attacker, "console-guess"))
        refused = attacker.get("/api/settings", headers=BEARER)  # the right token, too late
        console_refused = _sign_in(attacker, ADMIN_TOKEN)
        operator_in = operator.get("/api/settings", headers=BEARER)
        operator_signed_in = _sign_in(operator, ADMIN_TOKEN)
        salesforce_guess = attacker.post("/webhooks/salesforce?token=sf-guess", content=b"<x/>")
    assert [g.status_code for g in guesses] == [401] * PER_ADDRESS
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["code"] == "too_many_failed_authentications"
    assert console_refused.status_code == 429 and "too many failed" in console_refused.text
    assert operator_in.status_code == 200
    assert operator_signed_in.status_code == 303
    assert salesforce_guess.status_code == 401  # another credential, its own budget
    watch.assert_unharmed()

    # Addresses that rotate meet the overall budget (the rest of it, give or take what refilled
    # meanwhile): then a fresh address waits too, even with the right token.
    rotated = 0
    while clients(throttled).get("/api/settings").status_code == 401:
        rotated += 1
        assert rotated <= OVERALL, "the overall budget never ran out"
    assert rotated >= OVERALL - PER_ADDRESS
    assert clients(throttled).get("/api/settings", headers=BEARER).status_code == 429
    assert snapshot(sync_engine) == before

    refusals = [e for e in log_entries(throttled) if e["msg"] == "request refused"]
    assert len(refusals) == PER_ADDRESS + 2 + 1 + rotated + 2
    first = refusals[0]
    assert first["status"] == 401 and first["reason"] == "missing or wrong admin token"
    assert first["client"].startswith("127.0.0.") and first["path"] == "/api/settings"
    assert {e["reason"] for e in refusals if e["status"] == 429} == {
        "too many failed authentications (admin token)"
    }
    logs = throttled.logs()
    for secret in ("guess-0", "console-guess", "sf-guess", ADMIN_TOKEN):
        assert secret not in logs


def test_4_a_short_admin_token_stops_start_up(database_url: str) -> None:
    env = {**base_env(database_url), "SYNCGATE_ADMIN_TOKEN": "x"}
    run = subprocess.run(
        [sys.executable, "-m", "syncgate", "serve", "--port", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == (
        "syncgate: invalid setting SYNCGATE_ADMIN_TOKEN: must be at least 32 characters long"
        " (e.g. the output of `openssl rand -base64 32`)"
    )


# --- 5. sign-out did not end the session -------------------------------------------------------


def test_5_sign_out_ends_the_session_on_every_replica(service: Service, replica: Service) -> None:
    with client_from(service, own_address()) as browser:
        assert _sign_in(browser, ADMIN_TOKEN).status_code == 303
        session = browser.cookies.get("syncgate_console")
        assert session and browser.get("/console").status_code == 200
        page = browser.get("/console")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf
        assert browser.post("/console/sign-out", data={"csrf": csrf.group(1)}).status_code == 303
    for where in (service, replica):  # whoever kept a copy of the cookie
        with httpx.Client(base_url=where.url, cookies={"syncgate_console": session}) as thief:
            response = thief.get("/console/settings")
            assert response.status_code == 303
            assert response.headers["location"].startswith("/console/sign-in?")


# --- 6. legacy signatures accept a length-extension forgery ----------------------------------


def test_6_a_forged_legacy_signature_is_refused_when_v3_is_required(
    service: Service, replica: Service, store: Store
) -> None:
    # One request HubSpot really sent, captured: its body and its v1 signature.
    captured = json.dumps([property_change(8, "email", "captured@example.com")]).encode()
    signature = sign_v1(HUBSPOT_SECRET, captured)
    # Without the secret: a longer body and a v1 signature that verifies for it.
    glue, forged = extend(signature, len(HUBSPOT_SECRET) + len(captured), b'{"objectId":666}')
    headers = {"X-HubSpot-Signature": forged, "X-HubSpot-Signature-Version": "v1"}
    before = store.snapshot()
    with client_from(replica, own_address()) as attacker:
        refused = attacker.post("/webhooks/hubspot", content=captured + glue, headers=headers)
    assert refused.status_code == 401
    assert "only v3 is accepted" in refused.json()["message"]
    # By default (CONTRACT: v1/v2 accepted) the forgery gets past the signature; only the
    # padding in its body stops this one.
    with client_from(service, own_address()) as attacker:
        past = attacker.post("/webhooks/hubspot", content=captured + glue, headers=headers)
    assert past.status_code == 400
    assert store.snapshot() == before


# --- 7. disconnects, refusal logs, echoed inputs, redirects ------------------------------------


def _metric(service: Service, name: str) -> float:
    text = service.http.get("/metrics").text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_7_a_client_gone_mid_body_is_quiet_and_counted(
    service: Service, store: Store, watch: Watch
) -> None:
    before = store.snapshot()
    disconnects = _metric(service, "syncgate_client_disconnects_total")
    logged = len(service.logs())
    address = own_address()
    paths = ["/webhooks/hubspot", SALESFORCE_URL, "/api/segments", "/console/sign-in"]
    with watch.running():
        for path in paths:
            head = _head("POST", path, {"Content-Length": "100000", **BEARER})
            raw_http(service, head, [b"[{" * 1000], address=address, close_after_body=True)
        wait_until(
            lambda: _metric(service, "syncgate_client_disconnects_total") == disconnects + 4,
            timeout=10,
        )
    new_lines = service.logs()[logged:]
    assert "Traceback" not in new_lines
    entries = [json.loads(line) for line in new_lines.splitlines() if line.startswith("{")]
    assert not [e for e in entries if e["level"] in ("error", "critical")]
    gone = [e for e in entries if e["msg"] == "the client went away before sending its whole body"]
    assert [(e["level"], e["path"], e["received_bytes"]) for e in gone] == [
        ("info", "/webhooks/hubspot", 2000),
        ("info", "/webhooks/salesforce", 2000),
        ("info", "/api/segments", 2000),
        ("info", "/console/sign-in", 2000),
    ]
    watch.assert_unharmed()
    assert store.snapshot() == before


def test_7_each_refusal_is_one_log_line_without_credentials(service: Service, store: Store) -> None:
    before = store.snapshot()
    logged = len(service.logs())
    address = own_address()
    with client_from(service, address) as attacker:
        answers = [
            attacker.get("/api/contacts", headers={"Authorization": "Bearer bearer-guess"}),
            attacker.post("/webhooks/salesforce?token=query-guess", content=b"<x/>"),
            attacker.post(
                SALESFORCE_URL,
                content=forged_lead("x@example.com").replace(
                    SALESFORCE_ORG_ID.encode(), OTHER_ORG.encode()
                ),
            ),
            attacker.post(
                "/webhooks/hubspot", content=b"[]", headers={"X-HubSpot-Signature": "0" * 64}
            ),
            attacker.post("/api/segments", content=b"{" * (600 * 1024), headers=BEARER),
        ]
    assert [a.status_code for a in answers] == [401, 401, 403, 401, 413]
    new_lines = service.logs()[logged:]
    entries = [json.loads(line) for line in new_lines.splitlines() if line.startswith("{")]
    refusals = [
        (e["status"], e["reason"], e["method"], e["path"])
        for e in entries
        if e["msg"] == "request refused" and e["client"] == address
    ]
    assert refusals == [
        (401, "missing or wrong admin token", "GET", "/api/contacts"),
        (401, "the token query parameter is missing or wrong", "POST", "/webhooks/salesforce"),
        (
            403,
            "OrganizationId is not this service's Salesforce org",
            "POST",
            "/webhooks/salesforce",
        ),
        (401, "HubSpot signature rejected: signature mismatch", "POST", "/webhooks/hubspot"),
        (413, "body larger than 524288 bytes", "POST", "/api/segments"),
    ]
    for secret in ("bearer-guess", "query-guess", SALESFORCE_TOKEN, "token="):
        assert secret not in new_lines
    assert store.snapshot() == before


def test_7_a_validation_error_does_not_echo_a_large_input(service: Service, store: Store) -> None:
    before = store.snapshot()
    answer = service.api.post("/api/segments", json={"name": "x" * 400_000})
    assert answer.status_code == 422
    assert len(answer.content) < 2000
    assert [issue["loc"] for issue in answer.json()["detail"]] == [
        ["body", "name"],
        ["body", "type"],
    ]
    assert store.snapshot() == before


@pytest.mark.parametrize(
    "next_path", ["/console/../../x", "/console/%2e%2e/api/segments", "/console/./sign-in"]
)
def test_7_next_is_normalised_before_its_prefix_check(service: Service, next_path: str) -> None:
    with client_from(service, own_address()) as browser:
        page = browser.get("/console/sign-in", params={"next": next_path})
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf
        answer = browser.post(
            "/console/sign-in",
            data={"token": ADMIN_TOKEN, "csrf": csrf.group(1), "next": next_path},
        )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console"


# --- the classes refused already ----------------------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10 if n > 1 else "&lol;" * 10}">'
        for n in range(1, 10)
    )
    + "]>"
    + SOAP_HEAD
    + f"<OrganizationId>{SALESFORCE_ORG_ID}</OrganizationId><ActionId>&lol9;</ActionId>"
    + SOAP_TAIL
).encode()
XXE = (
    '<?xml version="1.0"?><!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    + SOAP_HEAD
    + f"<OrganizationId>{SALESFORCE_ORG_ID}</OrganizationId><ActionId>&xxe;</ActionId>"
    + SOAP_TAIL
).encode()
DEEP_JSON = b"[" * 200_000 + b"]" * 200_000
NOT_UTF8 = b'[{"eventId": "\xff\xfe\xfa"}]'
SQL = "x' OR '1'='1'; DROP TABLE contacts; --"


def _v3_with_another_secret(service: Service, body: bytes) -> dict[str, str]:
    stamp = str(int(time.time() * 1000))
    message = f"POST{service.url}/webhooks/hubspot".encode() + body + stamp.encode()
    digest = hmac.new(b"not-the-secret", message, hashlib.sha256).digest()
    return {
        "X-HubSpot-Signature-v3": base64.b64encode(digest).decode(),
        "X-HubSpot-Request-Timestamp": stamp,
    }


def _signed(service: Service, body: bytes) -> Callable[[httpx.Client], httpx.Response]:
    return lambda http: http.post(
        "/webhooks/hubspot", content=body, headers=hubspot_headers(service, body)
    )


def _refused_cases(
    service: Service,
) -> dict[str, tuple[list[Callable[[httpx.Client], httpx.Response]], list[int]]]:
    event = json.dumps([property_change(9, "email", "forged@example.com")]).encode()
    stale = hubspot_headers(service, event, timestamp_ms=int(time.time() * 1000) - 10 * 60_000)
    oversize = b" " * (MEGABYTE + 1)
    return {
        "forged signatures": (
            [
                lambda http: http.post(
                    "/webhooks/hubspot",
                    content=event,
                    headers=_v3_with_another_secret(service, event),
                ),
                lambda http: http.post(
                    "/webhooks/hubspot",
                    content=event,
                    headers={"X-HubSpot-Signature": sign_v1("guess", event)},
                ),
            ],
            [401, 401],
        ),
        "stale signature": (
            [lambda http: http.post("/webhooks/hubspot", content=event, headers=stale)],
            [401],
        ),
        "XXE and billion laughs": (
            [
                lambda http: http.post(SALESFORCE_URL, content=XXE),
                lambda http: http.post(SALESFORCE_URL, content=BILLION_LAUGHS),
            ],
            [400, 400],
        ),
        "deep JSON": (
            [
                _signed(service, DEEP_JSON),
                lambda http: http.post(
                    "/api/segments/preview", content=DEEP_JSON[:400_000], headers=BEARER
                ),
            ],
            [400, 422],
        ),
        "not UTF-8": (
            [
                _signed(service, NOT_UTF8),
                lambda http: http.post(
                    SALESFORCE_URL, content=XXE.replace(b"<ActionId>", b"<ActionId>\xff")
                ),
                lambda http: http.post("/api/segments/preview", content=NOT_UTF8, headers=BEARER),
            ],
            [400, 400, 422],
        ),
        "oversize": (
            [
                lambda http: http.post("/webhooks/hubspot", content=oversize),
                lambda http: http.post(SALESFORCE_URL, content=oversize),
            ],
            [413, 413],
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "forged signatures",
        "stale signature",
        "XXE and billion laughs",
        "deep JSON",
        "not UTF-8",
        "oversize",
    ],
)
def test_refused_input(
    service: Service, store: Store, watch: Watch, clients: Clients, case: str
) -> None:
    sends, expected = _refused_cases(service)[case]
    before = store.snapshot()
    http = clients(service)
    with watch.running():
        answers = concurrently([partial(send, http) for send in sends])
    assert [answer.status_code for answer in answers] == expected, [a.text[:200] for a in answers]
    watch.assert_unharmed()
    assert store.snapshot() == before


def test_refused_sql_metacharacters_in_filters(
    service: Service, store: Store, watch: Watch, clients: Clients
) -> None:
    before = store.snapshot()
    api = clients(service, headers=BEARER)
    previews = [
        {"filter": {"property": "email", "operator": "eq", "value": SQL}},
        {"filter": {"property": SQL, "operator": "is_known"}},
        {"filter": {"property": "email", "operator": "in", "value": [SQL, "x\\%_"]}},
        {"filter": {"property": "email", "operator": "contains", "value": "%' --"}},
    ]
    with watch.running():
        sizes = [api.post("/api/segments/preview", json=body).json()["size"] for body in previews]
        everyone = api.post(
            "/api/segments/preview", json={"filter": {"property": "email", "operator": "is_known"}}
        )
        by_email = api.get("/api/contacts", params={"email": f"{SEEDED_EMAIL}' OR '1'='1"})
    assert sizes == [0, 0, 0, 0]
    assert everyone.json()["size"] == 1  # the contact is there, the filters just do not match it
    assert by_email.status_code == 200 and by_email.json()["items"] == []
    watch.assert_unharmed()
    assert store.snapshot() == before


def test_refused_cross_site_console_posts(
    service: Service, store: Store, watch: Watch, clients: Clients
) -> None:
    browser = clients(service)
    assert _sign_in(browser, ADMIN_TOKEN).status_code == 303
    page = browser.get("/console")  # (stores the default settings)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    before = store.snapshot()
    form = {"name": "Pwned", "type": "static"}
    with watch.running():
        answers = [
            browser.post(
                "/console/segments/new",
                data={**form, "csrf": csrf.group(1)},
                headers={"Origin": "https://evil.example"},
            ),
            browser.post(
                "/console/segments/new",
                data={**form, "csrf": csrf.group(1)},
                headers={"Sec-Fetch-Site": "cross-site"},
            ),
            browser.post("/console/segments/new", data=form),
            browser.post("/console/sign-out", data={"csrf": "forged"}),
        ]
    assert [answer.status_code for answer in answers] == [403, 403, 403, 403]
    assert browser.get("/console").status_code == 200  # still signed in
    watch.assert_unharmed()
    assert store.snapshot() == before
