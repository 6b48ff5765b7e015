"""Operations routes (§7): liveness, readiness, metrics and the API docs."""

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from syncgate.config import Settings
from syncgate.main import create_app
from syncgate.metrics import DECISION_NAMES, DIRECTIONS, PLATFORMS
from syncgate.migrate import head_revision

TOKEN = "health-test-token-of-32-characters-or-more"


@asynccontextmanager
async def serving(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An app on its own database, started through its real lifespan."""
    config = Settings(database_url=database_url, admin_token=TOKEN, _env_file=None)
    app = create_app(config, run_worker=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as http,
    ):
        yield http


async def test_livez(client: httpx.AsyncClient) -> None:
    response = await client.get("/livez")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_migrated_to_head(client: httpx.AsyncClient, database_url: str) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["migration"] == head_revision(database_url)


async def test_readyz_when_the_database_is_not_migrated(tmp_path: Path) -> None:
    async with serving(f"sqlite:///{tmp_path / 'fresh.db'}") as http:
        response = await http.get("/readyz")
        assert response.status_code == 503, response.text
        reason = response.json()["reason"]
        assert "migration" in reason
        assert str(head_revision("sqlite://")) in reason
        # The process itself is alive.
        assert (await http.get("/livez")).status_code == 200


async def test_readyz_when_the_database_is_unreachable() -> None:
    # Nothing listens on port 1: the app must start all the same and report why it is not ready.
    async with serving("postgresql://postgres@127.0.0.1:1/syncgate") as http:
        response = await http.get("/readyz")
        assert response.status_code == 503, response.text
        assert "unreachable" in response.json()["reason"]
        assert (await http.get("/livez")).status_code == 200
        assert (await http.get("/metrics")).status_code == 200


async def test_api_answers_503_when_the_database_is_unreachable() -> None:
    async with serving("postgresql://postgres@127.0.0.1:1/syncgate") as http:
        response = await http.get("/api/settings")
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "store_unavailable"
        assert response.headers["Retry-After"]


def _samples(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


async def test_metrics_name_every_contract_metric(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)

    def has_sample(pattern: str) -> bool:
        return any(re.match(pattern, line) for line in samples)

    for name in (
        "syncgate_webhook_events_total",
        "syncgate_decisions_total",
        "syncgate_deliveries_total",
    ):
        assert has_sample(rf"{name}\{{"), f"no sample of {name}"
    assert has_sample(r"syncgate_outbox_pending "), "no sample of syncgate_outbox_pending"
    assert "# TYPE syncgate_forward_latency_seconds histogram" in response.text
    for suffix in ("bucket", "count", "sum"):
        assert has_sample(rf"syncgate_forward_latency_seconds_{suffix}\b")


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("syncgate_webhook_events_total", {"source": PLATFORMS}),
        ("syncgate_deliveries_total", {"target": PLATFORMS}),
        ("syncgate_decisions_total", {"direction": DIRECTIONS, "decision": DECISION_NAMES}),
    ],
)
async def test_metrics_show_every_known_label_value(
    client: httpx.AsyncClient, name: str, labels: dict[str, Sequence[str]]
) -> None:
    samples = _samples((await client.get("/metrics")).text)
    for label, values in labels.items():
        for value in values:
            assert any(
                line.startswith(name + "{") and f'{label}="{value}"' in line for line in samples
            ), f'{name} has no series with {label}="{value}"'


def test_label_values_are_those_of_the_contract() -> None:
    assert set(PLATFORMS) == {"hubspot", "salesforce"}
    assert set(DIRECTIONS) == {"hubspot_to_salesforce", "salesforce_to_hubspot"}
    assert set(DECISION_NAMES) == {
        "forwarded",
        "created_outside_segment",
        "skipped_not_in_segment",
        "skipped_no_change",
        "skipped_stale",
        "skipped_unmapped",
        "ignored",
    }


async def test_docs(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    openapi = await client.get("/openapi.json")
    assert openapi.status_code == 200
    assert "/api/segments" in openapi.json()["paths"]
