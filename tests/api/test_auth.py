"""Every /api/* route needs the admin bearer token; the operations routes do not."""

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from syncgate.config import Settings
from syncgate.main import create_app

TOKEN = "auth-test-token-of-32-characters-or-more"
# Building the app touches no database. The OpenAPI document is the public, version-proof
# list of its routes; a route hidden from it would be missed here.
_APP = create_app(
    Settings(database_url="sqlite://", admin_token=TOKEN, _env_file=None),
    run_worker=False,
)
API_ROUTES = sorted(
    (method.upper(), path)
    for path, operations in _APP.openapi()["paths"].items()
    if path.startswith("/api/")
    for method in operations
)


@pytest.fixture
async def guarded() -> AsyncIterator[httpx.AsyncClient]:
    """The app on an empty in-memory database: a request that got past the token check to the
    database would fail with a 500, so these tests also show that refusal comes first."""
    async with (
        _APP.router.lifespan_context(_APP),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=_APP), base_url="http://testserver"
        ) as http,
    ):
        yield http


BAD_AUTHORIZATIONS: dict[str, Callable[[str], str | None]] = {
    "no header": lambda token: None,
    "wrong token, same length": lambda token: "Bearer " + "x" * len(token),
    "token with a different length": lambda token: f"Bearer {token}x",
    "token prefix": lambda token: f"Bearer {token[:-1]}",
    "empty bearer": lambda token: "Bearer ",
    "scheme only": lambda token: "Bearer",
    "basic scheme": lambda token: f"Basic {token}",
    "no scheme": lambda token: token,
    "token scheme": lambda token: f"Token {token}",
}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


async def _send(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    authorization: str | None,
    **kwargs: Any,
) -> httpx.Response:
    request = client.build_request(method, path, **kwargs)
    request.headers.pop("Authorization", None)
    if authorization is not None:
        request.headers["Authorization"] = authorization
    return await client.send(request)


def test_the_route_table_is_seen() -> None:
    paths = {path for _, path in API_ROUTES}
    assert {"/api/segments", "/api/settings", "/api/mappings", "/api/contacts"} <= paths


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
@pytest.mark.parametrize("case", BAD_AUTHORIZATIONS)
async def test_api_route_refuses_a_missing_or_wrong_token(
    guarded: httpx.AsyncClient, method: str, path: str, case: str
) -> None:
    authorization = BAD_AUTHORIZATIONS[case](TOKEN)
    response = await _send(guarded, method, _concrete(path), authorization, json={})
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["code"] == "unauthorized"
    assert body["message"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
async def test_api_route_checks_the_token_before_the_body(
    guarded: httpx.AsyncClient, method: str, path: str
) -> None:
    # FastAPI parses a JSON body before it runs dependencies: a malformed body must not get
    # a 422 (or anything else) ahead of the 401.
    response = await _send(
        guarded,
        method,
        _concrete(path) + "?limit=0&after=%%%",
        None,
        content=b'{"broken": ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthorized"


async def test_the_right_token_is_accepted(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await _send(client, "GET", "/api/settings", f"Bearer {settings.admin_token}")
    assert response.status_code == 200
    # The scheme is case-insensitive (RFC 7235).
    response = await _send(client, "GET", "/api/settings", f"bearer {settings.admin_token}")
    assert response.status_code == 200


async def test_validation_errors_still_reach_an_authenticated_caller(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/segments", content=b'{"broken": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"]


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/metrics", "/docs", "/openapi.json"])
async def test_operations_routes_need_no_token(client: httpx.AsyncClient, path: str) -> None:
    response = await _send(client, "GET", path, None)
    assert response.status_code == 200, response.text


async def test_a_validation_error_does_not_echo_a_large_input(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/segments", json={"name": "x" * 100_000})
    assert response.status_code == 422
    assert len(response.content) < 1000
    too_long, missing = response.json()["detail"]
    assert too_long["loc"] == ["body", "name"] and missing["loc"] == ["body", "type"]
    assert "input" not in too_long and "input" not in missing
    small = await client.post("/api/segments", json={"name": "n", "type": "bogus"})
    assert [issue.get("input") for issue in small.json()["detail"]] == ["bogus"]


async def test_a_body_that_is_not_utf8_without_a_content_type_gets_422(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/segments/preview", content=b'{"filter": "\xff"}')
    assert response.status_code == 422
    assert response.json()["detail"][0]["input"] == '{"filter": "\ufffd"}'
