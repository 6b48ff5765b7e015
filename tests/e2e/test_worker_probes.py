"""`syncgate worker --metrics-port`: the worker process answers probes and exports the delivery
and latency metrics, which only the process that delivers can count."""

import re
from collections.abc import Callable

import httpx
import pytest
from fakes.salesforce import FakeSalesforce
from support.service import Service, free_port, property_change, wait_until

pytestmark = pytest.mark.e2e


def sample(metrics: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", metrics, re.MULTILINE)
    assert match, f"{name} not exported"
    return float(match.group(1))


def test_worker_metrics_port_serves_probes_and_the_delivery_metrics(
    make_service: Callable[..., Service], salesforce: FakeSalesforce
) -> None:
    service = make_service().start(worker=False)
    port = free_port()
    service.add_worker("--metrics-port", str(port))
    probes = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0)

    def answers(path: str) -> bool:
        try:
            return probes.get(path).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(lambda: answers("/readyz"), timeout=30)
    assert probes.get("/livez").json() == {"status": "ok"}
    assert probes.get("/readyz").json()["status"] == "ready"
    assert probes.get("/api/segments").status_code == 404  # probes only, no admin API

    assert service.send_hubspot([property_change(7, "email", "w@example.com")]).status_code == 200
    wait_until(lambda: salesforce.find_by_email("w@example.com"))
    done = 'syncgate_deliveries_total{outcome="done",target="salesforce"}'

    def delivered() -> str | None:
        text = probes.get("/metrics").text
        return text if sample(text, done) >= 1 else None

    wait_until(delivered)
    # Scraped again: the scrape that first saw the delivery may have counted the outbox just
    # before the delivery was committed.
    worker_metrics = probes.get("/metrics").text
    assert sample(worker_metrics, "syncgate_forward_latency_seconds_count") >= 1
    assert sample(worker_metrics, "syncgate_outbox_pending") == 0
    # The HTTP process took the webhook; it delivers nothing, so it counts no delivery.
    served = service.http.get("/metrics").text
    assert sample(served, 'syncgate_webhook_events_total{outcome="accepted",source="hubspot"}') == 1
    assert sample(served, done) == 0
