"""End-to-end harness: the real service process, fake platforms, signed webhooks."""

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import httpx
import pytest

from syncgate.platforms.hubspot.signature import signed_headers

ADMIN_TOKEN = "e2e-admin-token-of-32-characters-or-more"
HUBSPOT_SECRET = "e2e-hubspot-client-secret"
SALESFORCE_ORG_ID = "00D5g000004SyncEAA"
PORTAL_ID = 62515
APP_ID = 424242
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until `check()` is truthy; fail with the last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value:
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s (last value: {value!r})")
        time.sleep(interval)
        value = check()
    return value


class Service:
    """`python -m syncgate serve` (and optional extra `worker` processes) as child processes."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "SYNCGATE_PUBLIC_URL": self.url}
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.http = httpx.Client(base_url=self.url, timeout=10.0)
        self.api = httpx.Client(
            base_url=self.url, timeout=30.0, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{len(self.processes)}-{args[0]}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "syncgate", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def start(self, *, worker: bool = True, extra_workers: int = 0) -> "Service":
        args = ["serve", "--port", str(self.port)] + ([] if worker else ["--no-worker"])
        self._spawn(*args)
        for _ in range(extra_workers):
            self._spawn("worker")
        wait_until(self._ready, timeout=30.0)
        return self

    def add_worker(self, *args: str) -> subprocess.Popen[bytes]:
        """One more `syncgate worker` process (e.g. `--metrics-port P`)."""
        return self._spawn("worker", *args)

    def _ready(self) -> bool:
        try:
            return self.http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """SIGKILL every process: no shutdown code runs."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        self.processes.clear()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in self.log_dir.glob("*.log"))

    def send_salesforce(
        self, notifications: list[dict[str, Any]], session_id: str | None = None
    ) -> httpx.Response:
        return self.http.post(
            "/webhooks/salesforce",
            content=outbound_message(notifications, session_id=session_id),
            headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'},
        )

    def decisions(self, **params: Any) -> list[dict[str, Any]]:
        response = self.api.get("/api/decisions", params=params)
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    def send_hubspot(self, events: list[dict[str, Any]]) -> httpx.Response:
        body = json.dumps(events, separators=(",", ":")).encode()
        uri = f"{self.url}/webhooks/hubspot"
        headers = signed_headers(
            HUBSPOT_SECRET, "POST", uri, body, timestamp_ms=int(time.time() * 1000)
        )
        return self.http.post(
            "/webhooks/hubspot",
            content=body,
            headers={**headers, "Content-Type": "application/json"},
        )


_event_ids = iter(range(1_000_000, 10_000_000))


def hubspot_event(kind: str, object_id: int | str, **fields: Any) -> dict[str, Any]:
    """A webhook event shaped like HubSpot's (occurredAt now unless given)."""
    return {
        "eventId": next(_event_ids),
        "subscriptionId": 4578255,
        "portalId": PORTAL_ID,
        "appId": APP_ID,
        "occurredAt": fields.pop("occurredAt", int(time.time() * 1000)),
        "subscriptionType": kind,
        "attemptNumber": 0,
        "objectId": int(object_id),
        "changeSource": "CRM_UI",
        "sourceId": "userId:52530071",
        **fields,
    }


def property_change(
    object_id: int | str, name: str, value: str | None, **fields: Any
) -> dict[str, Any]:
    return hubspot_event(
        "contact.propertyChange", object_id, propertyName=name, propertyValue=value, **fields
    )


SOBJECT_NS = "urn:sobject.enterprise.soap.sforce.com"
_notification_ids = iter(range(1, 10_000_000))


def salesforce_time(epoch_seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch_seconds))


def notification(object_type: str, record_id: str, **fields: str | None) -> dict[str, Any]:
    """One Outbound Message notification (a fresh notification id each time)."""
    return {
        "id": f"04l1I{next(_notification_ids):013d}",
        "type": object_type,
        "fields": {"Id": record_id, **fields},
    }


def outbound_message(
    notifications: list[dict[str, Any]],
    org_id: str = SALESFORCE_ORG_ID,
    session_id: str | None = None,
) -> bytes:
    """A SOAP envelope shaped like the real one in reference/salesforce.md §1.4."""
    parts = []
    for item in notifications:
        values = "".join(
            f'<sf:{name} xsi:nil="true"/>'
            if value is None
            else f"<sf:{name}>{escape(value)}</sf:{name}>"
            for name, value in item["fields"].items()
        )
        parts.append(
            f"<Notification><Id>{item['id']}</Id>"
            f'<sObject xsi:type="sf:{item["type"]}" xmlns:sf="{SOBJECT_NS}">'
            f"{values}</sObject></Notification>"
        )
    return (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org_id}</OrganizationId><ActionId>04k1I000000bmsHQAQ</ActionId>"
        + (f"<SessionId>{session_id}</SessionId>" if session_id else '<SessionId xsi:nil="true"/>')
        + "<EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/62.0/00D</EnterpriseUrl>"
        "<PartnerUrl>https://example.my.salesforce.com/services/Soap/u/62.0/00D</PartnerUrl>"
        + "".join(parts)
        + "</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()
