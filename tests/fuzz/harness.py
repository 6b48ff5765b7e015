"""The webhook intake under fuzzing: signed posts in, inbox processing, and what must hold after."""

import time
from collections import Counter
from dataclasses import dataclass

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.config import Settings
from syncgate.inbox.models import InboxEvent, InboxStatus
from syncgate.platforms.hubspot.signature import signed_headers
from syncgate.processing.round import InboxRounds

ADMIN_TOKEN = "fuzz-admin-token-of-32-characters-or-more"
HUBSPOT_SECRET = "fuzz-hubspot-client-secret"
SALESFORCE_ORG_ID = "00D5e000000FuZzEAA"
SALESFORCE_TOKEN = "fuzz-outbound-token"
BASE_URL = "http://testserver"
HUBSPOT_PATH = "/webhooks/hubspot"
SALESFORCE_PATH = "/webhooks/salesforce"
# A body holds at most 1,000 events (HubSpot) or 100 (Salesforce).
MAX_EVENTS = 1000


def fuzz_settings(database_url: str) -> Settings:
    """Both intakes on; one attempt, so an event that cannot be processed ends `failed` at once."""
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        hubspot_client_secret=HUBSPOT_SECRET,
        salesforce_org_id=SALESFORCE_ORG_ID,
        salesforce_webhook_token=SALESFORCE_TOKEN,
        max_attempts=1,
        # Wrong tokens are part of the fuzzing, not guessing to throttle.
        auth_failures_per_address=1_000_000,
        auth_failures_global=1_000_000,
        _env_file=None,
    )


# An inclusion segment whose filter reads the properties the fuzzers write, with every kind of
# comparison (text, number, date), so hostile values go through membership evaluation too.
INCLUSION_FILTER = {
    "any": [
        {"property": "country", "operator": "eq", "value": "France"},
        {"property": "firstname", "operator": "contains", "value": "a"},
        {"property": "lastname", "operator": "gt", "value": 10},
        {"property": "company", "operator": "lt", "value": "2024-01-01"},
        {"not": {"property": "email", "operator": "ends_with", "value": "@example.com"}},
    ]
}


@dataclass
class Intake:
    settings: Settings
    http: httpx.AsyncClient
    session_factory: async_sessionmaker[AsyncSession]

    async def set_up_gate(self) -> None:
        """An active inclusion segment and a static one, as an operator would have them."""
        for body in (
            {"name": "fuzz inclusion", "type": "active", "filter": INCLUSION_FILTER},
            {"name": "fuzz static", "type": "static"},
        ):
            response = await self.http.post("/api/segments", json=body)
            assert response.status_code == 201, response.text
        segment_id = (await self.http.get("/api/segments")).json()["items"][0]["id"]
        response = await self.http.put(
            "/api/settings/inclusion-segment", json={"segment_id": segment_id}
        )
        assert response.status_code == 200, response.text

    async def post_hubspot(self, body: bytes) -> httpx.Response:
        """POST a body signed the way HubSpot signs it (v3 plus the legacy v1 headers)."""
        now_ms = time.time_ns() // 1_000_000
        headers = signed_headers(
            HUBSPOT_SECRET, "POST", BASE_URL + HUBSPOT_PATH, body, timestamp_ms=now_ms
        )
        return await self.http.post(
            HUBSPOT_PATH, content=body, headers={**headers, "Content-Type": "application/json"}
        )

    async def post_salesforce(
        self, body: bytes, token: str | None = SALESFORCE_TOKEN
    ) -> httpx.Response:
        return await self.http.post(
            SALESFORCE_PATH,
            params={} if token is None else {"token": token},
            content=body,
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
        )

    async def process_inbox(self) -> int:
        """Run the inbox processor (without platform clients) until nothing is due."""
        processor = InboxRounds(self.settings, self.session_factory, hubspot=None)
        claimed = 0
        # Every event is due at once, so one round per batch plus the round that finds none.
        max_rounds = MAX_EVENTS // processor.batch_size + 2
        for _ in range(max_rounds):
            count = await processor.run_once()
            if not count:
                return claimed
            claimed += count
        raise AssertionError(f"the inbox still had due events after {max_rounds} rounds")

    async def inbox_statuses(self) -> Counter[str]:
        async with self.session_factory() as session:
            rows = await session.execute(
                select(InboxEvent.status, func.count()).group_by(InboxEvent.status)
            )
            return Counter({status: count for status, count in rows})

    async def failures(self) -> list[tuple[str, str | None]]:
        """(kind, last_error) of every event that processing gave up on."""
        async with self.session_factory() as session:
            rows = await session.execute(
                select(InboxEvent.kind, InboxEvent.last_error).where(
                    InboxEvent.status == InboxStatus.FAILED
                )
            )
            return [(kind, error) for kind, error in rows]

    async def assert_store_readable(self) -> None:
        """Whatever was stored can be read back through the admin API."""
        for path in ("/api/contacts?limit=1000", "/api/decisions?limit=1000", "/api/deliveries"):
            response = await self.http.get(path)
            assert response.status_code == 200, (path, response.status_code, response.text)
