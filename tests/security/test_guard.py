"""The request guard: body limits per route class, quiet disconnects, one log line per refusal."""

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.types import Message

from syncgate.config import Settings
from syncgate.logging import JsonFormatter
from syncgate.main import create_app

TOKEN = "guard-test-token-of-32-characters-or-more"
API_LIMIT = 2048
WEBHOOK_LIMIT = 4096


@pytest.fixture
def guarded_settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        admin_token=TOKEN,
        hubspot_client_secret="guard-hubspot-secret",
        salesforce_org_id="00D5g000004SyncEAA",
        salesforce_webhook_token="guard-salesforce-token",
        max_api_body_bytes=API_LIMIT,
        max_body_bytes=WEBHOOK_LIMIT,
        _env_file=None,
    )


@pytest.fixture
async def app(guarded_settings: Settings) -> AsyncIterator[Any]:
    app = create_app(guarded_settings, run_worker=False)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        yield client


def _preview(size: int) -> bytes:
    """A segment preview body of exactly `size` bytes."""
    head = b'{"filter": {"property": "email", "operator": "eq", "value": "'
    tail = b'"}}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def _chunks(body: bytes, size: int = 500) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def post_scope(
    path: str, *headers: tuple[bytes, bytes], client: str = "127.0.0.1", query: bytes = b""
) -> dict[str, Any]:
    """The ASGI scope of a POST, for calling the app as the server would."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": (client, 5000),
        "server": ("testserver", 80),
    }


async def test_an_api_body_at_the_limit_is_read(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/segments/preview", content=_preview(API_LIMIT), headers=AUTH)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("authorization", [AUTH, {}], ids=["with-token", "without-token"])
async def test_an_api_body_over_the_limit_gets_413_before_anything_else(
    http: httpx.AsyncClient, chunked: bool, authorization: dict[str, str]
) -> None:
    body = _preview(API_LIMIT + 1)
    content = _chunks(body) if chunked else body
    response = await http.post("/api/segments/preview", content=content, headers=authorization)
    assert response.status_code == 413
    assert response.json() == {
        "code": "payload_too_large",
        "message": f"body larger than {API_LIMIT} bytes",
    }
    assert response.headers["connection"] == "close"


async def test_a_declared_length_over_the_limit_is_refused_without_reading(app: Any) -> None:
    received: list[Message] = []
    sent: list[Message] = []

    async def receive() -> Message:
        received.append({"type": "http.request", "body": b"x", "more_body": True})
        return received[-1]

    async def send(message: Message) -> None:
        sent.append(message)

    scope = post_scope("/api/segments/preview", (b"content-length", b"104857600"))
    await app(scope, receive, send)
    assert received == []
    assert sent[0]["status"] == 413


async def test_the_console_gets_the_api_limit_as_a_page(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/console/sign-in",
        content=b"token=" + b"x" * API_LIMIT,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert f"({API_LIMIT} bytes)" in response.text


async def test_webhooks_keep_their_own_larger_limit(http: httpx.AsyncClient) -> None:
    # Over the API limit but within the webhook one: the signature check answers.
    response = await http.post("/webhooks/hubspot", content=b"[" + b" " * (API_LIMIT + 10) + b"]")
    assert response.status_code == 401
    response = await http.post("/webhooks/hubspot", content=b" " * (WEBHOOK_LIMIT + 1))
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    response = await http.post(
        "/webhooks/salesforce?token=guard-salesforce-token",
        content=_chunks(b" " * (WEBHOOK_LIMIT + 1)),
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/xml")
    assert b"<faultstring>body larger than 4096 bytes</faultstring>" in response.content


def _disconnects() -> float:
    return REGISTRY.get_sample_value("syncgate_client_disconnects_total") or 0.0


@pytest.mark.parametrize("path", ["/webhooks/hubspot", "/webhooks/salesforce", "/api/segments"])
async def test_a_client_gone_mid_body_is_counted_quietly(
    app: Any, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b"[{", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = post_scope(
        path,
        (b"authorization", f"Bearer {TOKEN}".encode()),
        client="192.0.2.7",
        query=b"token=guard-salesforce-token",
    )
    before = _disconnects()
    with caplog.at_level(logging.DEBUG):
        await app(scope, receive, send)
    assert sent == []
    assert _disconnects() == before + 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    (line,) = [r for r in caplog.records if r.name == "syncgate.security"]
    assert line.fields == {  # type: ignore[attr-defined]
        "client": "192.0.2.7",
        "method": "POST",
        "path": path,
        "received_bytes": 2,
    }


def _refusals(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        record.fields  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "syncgate.security" and record.getMessage() == "request refused"
    ]


async def test_each_refusal_is_one_log_line_without_credential_or_query(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        await http.get("/api/segments", headers={"Authorization": "Bearer guess-one"})
        await http.post(
            "/webhooks/salesforce?token=guess-two", content=b"<x/>", headers={"X-Trace": "1"}
        )
        await http.post("/api/segments/preview", content=_preview(API_LIMIT + 1))
        await http.get("/livez")
    assert _refusals(caplog) == [
        {
            "status": 401,
            "reason": "missing or wrong admin token",
            "client": "127.0.0.1",
            "method": "GET",
            "path": "/api/segments",
        },
        {
            "status": 401,
            "reason": "the token query parameter is missing or wrong",
            "client": "127.0.0.1",
            "method": "POST",
            "path": "/webhooks/salesforce",
        },
        {
            "status": 413,
            "reason": f"body larger than {API_LIMIT} bytes",
            "client": "127.0.0.1",
            "method": "POST",
            "path": "/api/segments/preview",
        },
    ]
    lines = [
        JsonFormatter().format(record)
        for record in caplog.records
        if record.name.startswith("syncgate")
    ]
    refusals = [json.loads(line) for line in lines if '"request refused"' in line]
    assert [entry["level"] for entry in refusals] == ["warning"] * 3
    assert not [line for line in lines if "guess-one" in line or "guess-two" in line]
