"""Failed authentications are throttled per client address and overall, per kind of credential."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from console.helpers import Console

from syncgate.config import Settings
from syncgate.main import create_app
from syncgate.platforms.hubspot.signature import signed_headers
from syncgate.security.throttle import FailureBudget

TOKEN = "throttle-test-token-of-32-characters-or-more"
HUBSPOT_SECRET = "throttle-hubspot-secret"
SALESFORCE_TOKEN = "throttle-salesforce-token"
PER_ADDRESS = 3
OVERALL = 5


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_that_keeps_failing_waits_and_others_do_not() -> None:
    clock = Clock()
    budget = FailureBudget(PER_ADDRESS, OVERALL, clock=clock)
    for _ in range(PER_ADDRESS):
        assert budget.retry_after("a") == 0
        budget.record_failure("a")
    assert budget.retry_after("a") == pytest.approx(60 / PER_ADDRESS)
    assert budget.retry_after("b") == 0
    clock.now += 60 / PER_ADDRESS
    assert budget.retry_after("a") == 0  # one more failure a refill period later


def test_rotating_addresses_meet_the_overall_budget() -> None:
    clock = Clock()
    budget = FailureBudget(PER_ADDRESS, OVERALL, clock=clock)
    for number in range(OVERALL):
        assert budget.retry_after(f"10.0.0.{number}") == 0
        budget.record_failure(f"10.0.0.{number}")
    assert budget.retry_after("10.0.0.99") == pytest.approx(60 / OVERALL)
    clock.now += 60
    assert budget.retry_after("10.0.0.99") == 0


def test_the_addresses_remembered_are_bounded() -> None:
    budget = FailureBudget(PER_ADDRESS, 10**9, max_addresses=100, clock=Clock())
    for number in range(10_000):
        budget.record_failure(f"address-{number}")
    assert budget.tracked_addresses == 100
    # The least recently failed are forgotten first.
    assert budget.retry_after("address-9999") == 0
    for _ in range(PER_ADDRESS - 1):
        budget.record_failure("address-9999")
    assert budget.retry_after("address-9999") > 0


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Any]:
    settings = Settings(
        database_url=database_url,
        admin_token=TOKEN,
        hubspot_client_secret=HUBSPOT_SECRET,
        salesforce_org_id="00D5g000004SyncEAA",
        salesforce_webhook_token=SALESFORCE_TOKEN,
        auth_failures_per_address=PER_ADDRESS,
        auth_failures_global=OVERALL,
        _env_file=None,
    )
    app = create_app(settings, run_worker=False)
    async with app.router.lifespan_context(app):
        yield app


def _client(app: Any, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_wrong_bearer_tokens_get_429_then_even_the_right_one_waits(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with _client(app, "198.51.100.1") as attacker, _client(app, "198.51.100.2") as operator:
        for _ in range(PER_ADDRESS):
            assert (
                await attacker.get("/api/settings", headers=_bearer("guess"))
            ).status_code == 401
        caplog.clear()
        refused = await attacker.get("/api/settings", headers=_bearer(TOKEN))
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == str(60 // PER_ADDRESS)
        assert refused.json() == {
            "code": "too_many_failed_authentications",
            "message": f"too many failed authentications; retry in {60 // PER_ADDRESS} s",
            "retry_after": 60 // PER_ADDRESS,
        }
        (line,) = [
            r.fields  # type: ignore[attr-defined]
            for r in caplog.records
            if r.getMessage() == "request refused"
        ]
        assert line["reason"] == "too many failed authentications (admin token)"
        assert line["client"] == "198.51.100.1"
        # Another address is not held back by this one's failures.
        assert (await operator.get("/api/settings", headers=_bearer(TOKEN))).status_code == 200


async def test_a_malformed_body_without_a_token_counts_too(app: Any) -> None:
    async with _client(app, "198.51.100.3") as attacker:
        for expected in [401] * PER_ADDRESS + [429]:
            response = await attacker.post(
                "/api/segments", content=b"{", headers={"Content-Type": "application/json"}
            )
            assert response.status_code == expected


async def test_the_overall_budget_stops_rotating_addresses(app: Any) -> None:
    for number in range(OVERALL):
        async with _client(app, f"203.0.113.{number}") as client:
            assert (await client.get("/api/settings")).status_code == 401
    async with _client(app, "203.0.113.200") as fresh:
        response = await fresh.get("/api/settings", headers=_bearer(TOKEN))
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) == 60 // OVERALL


async def test_console_sign_in_guesses_share_the_admin_budget(app: Any) -> None:
    async with _client(app, "198.51.100.4") as http:
        console = Console(http, TOKEN)
        for _ in range(PER_ADDRESS - 1):
            assert (await console.sign_in(token="guess")).status_code == 401
        assert (await http.get("/api/settings")).status_code == 401
        page = await console.sign_in()  # the right token, but this address is held back
        assert page.status_code == 429
        assert page.headers["Retry-After"] == str(60 // PER_ADDRESS)
        assert "too many failed authentications" in page.text
        assert "text/html" in page.headers["content-type"]


async def test_webhook_failures_have_budgets_of_their_own(app: Any) -> None:
    async with _client(app, "198.51.100.5") as sender:
        for expected in [401] * PER_ADDRESS + [429]:
            response = await sender.post(
                "/webhooks/hubspot", content=b"[]", headers={"X-HubSpot-Signature": "0" * 64}
            )
            assert response.status_code == expected
        body = b"[]"
        uri = "http://testserver/webhooks/hubspot"
        signed = signed_headers(HUBSPOT_SECRET, "POST", uri, body, timestamp_ms=0)
        assert (
            await sender.post("/webhooks/hubspot", content=body, headers=signed)
        ).status_code == 429

        for expected in [401] * PER_ADDRESS + [429]:
            response = await sender.post("/webhooks/salesforce?token=guess", content=b"<x/>")
            assert response.status_code == expected
        assert response.headers["content-type"].startswith("text/xml")
        assert response.headers["Retry-After"] == str(60 // PER_ADDRESS)
        assert b"too many failed authentications" in response.content

        # The admin token's budget is untouched by failed webhooks.
        assert (await sender.get("/api/settings", headers=_bearer(TOKEN))).status_code == 200
