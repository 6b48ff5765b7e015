"""Load generator for bench/run.py: a separate process that sends webhooks to syncgate.

Started by run.py as ``python bench/loadgen.py '<json config>'``; writes its results as JSON to
the file named by the config's ``output``. Three modes:

- ``closed``: ``concurrency`` connections, each sending the next request as soon as the previous
  one is answered, for ``warmup`` + ``duration`` seconds (or until the precomputed requests run
  out); throughput and latency are counted over the ``duration`` window only.
- ``rate``: one event per request at a steady ``rate`` per second (open loop: a late answer does
  not delay the next send); reports the wall-clock send time of every objectId.
- ``burst``: ``total`` events in ``events_per_body``-event requests, as fast as ``concurrency``
  connections allow; reports the wall-clock start and end.

``source`` chooses the platform the webhooks imitate:

- ``hubspot`` (default): signed HubSpot webhooks. Every event is distinct (its own eventId and
  objectId) and every request is signed (v3 + v1) with the app secret.
- ``salesforce``: Salesforce Outbound Messages (SOAP 1.1, ``org_id`` as OrganizationId,
  ``?token=`` when the config has a ``token``), each notification a new Lead (its own
  notification Id, record Id and email; CreatedDate = LastModifiedDate, so it is a creation).

Bodies (and signatures) are computed before the clock starts.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from syncgate.platforms.hubspot.signature import signed_headers  # noqa: E402

PORTAL_ID = 62515
APP_ID = 424242
PATH = "/webhooks/hubspot"
SALESFORCE_PATH = "/webhooks/salesforce"
SOAP_ACK = b"<Ack>true</Ack>"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def event_json(event_id: int, object_id: int, email: str, occurred_ms: int) -> str:
    """A ``contact.propertyChange`` of ``email`` shaped like HubSpot's (compact JSON)."""
    return (
        f'{{"eventId":{event_id},"subscriptionId":4578255,"portalId":{PORTAL_ID},'
        f'"appId":{APP_ID},"occurredAt":{occurred_ms},'
        f'"subscriptionType":"contact.propertyChange","attemptNumber":0,'
        f'"objectId":{object_id},"changeSource":"CRM_UI","sourceId":"userId:52530071",'
        f'"propertyName":"email","propertyValue":"{email}"}}'
    )


def email_for(object_id: int) -> str:
    return f"bench-{object_id}@example.com"


def lead_notification(object_id: int, stamp: str) -> str:
    """One Outbound Message notification: a new Lead (CreatedDate = LastModifiedDate)."""
    return (
        f"<Notification><Id>04l{object_id:015d}</Id>"
        '<sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"<sf:Id>00Q{object_id:015d}</sf:Id><sf:CreatedDate>{stamp}</sf:CreatedDate>"
        f"<sf:LastModifiedDate>{stamp}</sf:LastModifiedDate>"
        f"<sf:Email>{email_for(object_id)}</sf:Email><sf:FirstName>Bench</sf:FirstName>"
        f"<sf:LastName>Lead {object_id}</sf:LastName><sf:Company>Bench Inc</sf:Company>"
        "</sObject></Notification>"
    )


def outbound_message(org_id: str, notifications: list[str]) -> bytes:
    """A SOAP envelope shaped like the real one (reference/salesforce.md §1.4)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org_id}</OrganizationId><ActionId>04k5g000000bmsHAAQ</ActionId>"
        '<SessionId xsi:nil="true"/>'
        "<EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/62.0/00D</EnterpriseUrl>"
        "<PartnerUrl>https://example.my.salesforce.com/services/Soap/u/62.0/00D</PartnerUrl>"
        + "".join(notifications)
        + "</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


@dataclass
class Request:
    body: bytes
    headers: dict[str, str]
    object_ids: list[int]
    head: bytes | None = None  # request line and headers, built once by RawClient


def request_path(config: dict[str, Any]) -> str:
    if config.get("source", "hubspot") == "hubspot":
        return PATH
    token = config.get("token")
    return SALESFORCE_PATH + (f"?token={quote(token, safe='')}" if token else "")


def build_requests(config: dict[str, Any], count: int, events_per_body: int) -> list[Request]:
    """``count`` requests of ``events_per_body`` distinct events (notifications) each."""
    base = int(config["id_base"])
    id_blocks = [
        [base + i * events_per_body + j for j in range(events_per_body)] for i in range(count)
    ]
    if config.get("source", "hubspot") == "salesforce":
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        headers = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'}
        return [
            Request(
                outbound_message(config["org_id"], [lead_notification(i, stamp) for i in ids]),
                headers,
                ids,
            )
            for ids in id_blocks
        ]
    uri = f"{config['url']}/webhooks/hubspot"
    secret = config["secret"]
    now_ms = int(time.time() * 1000)
    requests = []
    for ids in id_blocks:
        body = (
            "[" + ",".join(event_json(oid, oid, email_for(oid), now_ms) for oid in ids) + "]"
        ).encode()
        headers = signed_headers(secret, "POST", uri, body, timestamp_ms=now_ms)
        headers["Content-Type"] = "application/json"
        requests.append(Request(body, headers, ids))
    return requests


class CpuSample:
    """CPU seconds of this process, of another process (all threads) and of the machine."""

    def __init__(self, server_pid: int | None) -> None:
        self.wall = time.perf_counter()
        self.own = time.process_time()
        self.server = _process_cpu(server_pid) if server_pid else None
        self.postgres = _postgres_cpu()
        self.machine_busy, self.machine_total = _machine_cpu()

    def usage_since(self, start: CpuSample) -> dict[str, float | None]:
        wall = self.wall - start.wall
        total = self.machine_total - start.machine_total
        server = None
        if self.server is not None and start.server is not None:
            server = (self.server - start.server) / wall
        own = (self.own - start.own) / wall
        postgres = (self.postgres - start.postgres) / wall
        # busy fraction of all cores, times the core count: 2.0 = both cores busy
        cores = os.cpu_count() or 1
        machine = (self.machine_busy - start.machine_busy) / total * cores if total else None
        postgres = max(0.0, postgres)  # a backend that exits between samples takes its time along
        other = None
        if machine is not None and server is not None:
            other = max(0.0, machine - own - server - postgres)
        return {
            "loadgen_cpu": own,
            "server_cpu": server,
            "postgres_cpu": postgres,
            "machine_cpu": machine,
            "other_cpu": other,  # everything else on the machine: other users' jobs, the kernel
        }


def _process_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL server process (backends, walwriter, checkpointer…)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, _, rest = text.partition(" (")[2].rpartition(") ")
        if name == "postgres":
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def _machine_cpu() -> tuple[float, float]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])
    return float(total - idle), float(total)


def acknowledged(config: dict[str, Any], status: str, content: bytes, events: int) -> int:
    """Events a 200 answer took in: HubSpot's ``accepted`` count; Salesforce's SOAP Ack
    acknowledges the whole message (duplicates included: it does not tell them apart)."""
    if status != "200":
        return 0
    if config.get("source", "hubspot") == "salesforce":
        return events if SOAP_ACK in content else 0
    return int(json.loads(content)["accepted"])


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class Client(Protocol):
    async def post(self, request: Request) -> tuple[int, bytes]: ...

    async def aclose(self) -> None: ...


class HttpxClient:
    """httpx.AsyncClient (h11, pure Python): about 2.5 ms of CPU per request here."""

    def __init__(self, url: str, connections: int, path: str = PATH) -> None:
        self.path = path
        self.http = httpx.AsyncClient(
            base_url=url,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            timeout=httpx.Timeout(60.0),
        )

    async def post(self, request: Request) -> tuple[int, bytes]:
        response = await self.http.post(self.path, content=request.body, headers=request.headers)
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self.http.aclose()


class RawClient:
    """HTTP/1.1 keep-alive over asyncio streams, request bytes prebuilt: a few % of httpx's CPU.

    Enough HTTP for this job: Content-Length or chunked answers, reconnect when the server
    closes. A pool of at most ``connections`` connections, opened on demand.
    """

    def __init__(self, url: str, connections: int, path: str = PATH) -> None:
        self.path = path
        parsed = urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.host_header = parsed.netloc
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(connections)
        self.open: list[asyncio.StreamWriter] = []

    def wire(self, request: Request) -> bytes:
        if request.head is None:
            lines = [
                f"POST {self.path} HTTP/1.1",
                f"Host: {self.host_header}",
                f"Content-Length: {len(request.body)}",
                *(f"{name}: {value}" for name, value in request.headers.items()),
            ]
            request.head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        return request.head + request.body

    async def post(self, request: Request) -> tuple[int, bytes]:
        data = self.wire(request)
        async with self.slots:
            reused = bool(self.idle)
            try:
                return await self._exchange(data, reused)
            except (asyncio.IncompleteReadError, ConnectionError) as error:
                # The server closes keep-alive connections idle for 5 s (uvicorn's default):
                # a request on one that closed under us never arrived. Send it again on a
                # fresh connection, as HTTP clients do (a repeat would only be a duplicate).
                partial = isinstance(error, asyncio.IncompleteReadError) and error.partial
                if not reused or partial:
                    raise
                self._close_idle()
                return await self._exchange(data, reused=False)

    async def _exchange(self, data: bytes, reused: bool) -> tuple[int, bytes]:
        if reused:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.open.append(writer)
        try:
            writer.write(data)
            status, body, keep = await self._response(reader)
        except (OSError, asyncio.IncompleteReadError):
            writer.close()
            raise
        if keep:
            self.idle.append((reader, writer))
        else:
            writer.close()
        return status, body

    def _close_idle(self) -> None:
        """Drop every idle connection: when one was closed by the server, older ones were too."""
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()

    @staticmethod
    async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, keep = 0, False, True
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                keep = False
        if not chunked:
            return status, await reader.readexactly(length), keep
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            body += await reader.readexactly(size + 2)
            if size == 0:
                return status, bytes(body[:-2]), keep
            del body[-2:]

    async def aclose(self) -> None:
        for writer in self.open:
            writer.close()


def client(config: dict[str, Any], connections: int) -> Client:
    if config.get("client", "raw") == "httpx":
        return HttpxClient(config["url"], connections, request_path(config))
    return RawClient(config["url"], connections, request_path(config))


async def post(http: Client, request: Request) -> tuple[str, bytes]:
    """Status as text (or the exception's name) and the body."""
    try:
        status, content = await http.post(request)
    except (httpx.HTTPError, OSError, asyncio.IncompleteReadError) as error:
        return type(error).__name__, b""
    return str(status), content


@dataclass
class Window:
    start: float = 0.0
    end: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    duplicates_seen: int = 0


async def closed_loop(config: dict[str, Any]) -> dict[str, Any]:
    concurrency = int(config["concurrency"])
    per_body = int(config["events_per_body"])
    warmup, duration = float(config["warmup"]), float(config["duration"])
    built = time.perf_counter()
    requests = build_requests(config, int(config["max_requests"]), per_body)
    build_seconds = time.perf_counter() - built
    check_ack = bool(config.get("check_ack", False))
    window = Window()
    next_index = 0
    last_done = 0.0
    samples: dict[str, CpuSample] = {}
    server_pid = config.get("server_pid")

    async def sender(http: Client) -> None:
        nonlocal next_index, last_done
        while next_index < len(requests):
            request = requests[next_index]
            next_index += 1
            began = time.perf_counter()
            if began >= window.end:
                return
            status, content = await post(http, request)
            done = last_done = time.perf_counter()
            if window.start <= done <= window.end:
                if status != "200":
                    window.errors[status] = window.errors.get(status, 0) + 1
                else:
                    window.latencies.append(done - began)
                    if check_ack and b'"duplicates":0' not in content:
                        window.duplicates_seen += 1

    async def sampler() -> None:
        await asyncio.sleep(window.start - time.perf_counter())
        samples["start"] = CpuSample(server_pid)
        await asyncio.sleep(window.end - time.perf_counter())
        samples["end"] = CpuSample(server_pid)

    http = client(config, concurrency)
    try:
        now = time.perf_counter()
        window.start, window.end = now + warmup, now + warmup + duration
        await asyncio.gather(sampler(), *(sender(http) for _ in range(concurrency)))
    finally:
        await http.aclose()
    exhausted = next_index >= len(requests)
    # Had the precomputed requests run out before the window closed, count the shorter window.
    measured = min(window.end, last_done) - window.start if exhausted else duration
    cpu = samples["end"].usage_since(samples["start"]) if "end" in samples else {}
    latencies = sorted(window.latencies)
    return {
        "mode": "closed",
        "client": config.get("client", "raw"),
        "concurrency": concurrency,
        "events_per_body": per_body,
        "warmup_s": warmup,
        "duration_s": measured,
        "requests_ok": len(latencies),
        "acks_per_s": len(latencies) / measured,
        "events_per_s": len(latencies) * per_body / measured,
        "p50_ms": _ms(percentile(latencies, 0.50)),
        "p90_ms": _ms(percentile(latencies, 0.90)),
        "p99_ms": _ms(percentile(latencies, 0.99)),
        "max_ms": _ms(latencies[-1] if latencies else None),
        "errors": window.errors,
        "acks_not_all_accepted": window.duplicates_seen,
        "pool_exhausted": exhausted,
        "requests_sent": next_index,
        "precompute_s": build_seconds,
        **cpu,
    }


async def steady_rate(config: dict[str, Any]) -> dict[str, Any]:
    rate, duration = float(config["rate"]), float(config["duration"])
    requests = build_requests(config, int(rate * duration), 1)
    sent: list[tuple[int, float, float | None]] = []
    errors: dict[str, int] = {}
    start_sample = CpuSample(config.get("server_pid"))

    async def send(http: Client, request: Request) -> None:
        wall = time.time()
        began = time.perf_counter()
        status, _ = await post(http, request)
        ack = time.perf_counter() - began
        if status != "200":
            errors[status] = errors.get(status, 0) + 1
        sent.append((request.object_ids[0], wall, ack if status == "200" else None))

    http = client(config, int(config.get("concurrency", 16)))
    late = 0
    try:
        tasks = []
        t0 = time.perf_counter()
        for i, request in enumerate(requests):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.005:
                late += 1
            tasks.append(asyncio.create_task(send(http, request)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    finally:
        await http.aclose()
    acks = sorted(a for _, _, a in sent if a is not None)
    return {
        "mode": "rate",
        "source": config.get("source", "hubspot"),
        "client": config.get("client", "raw"),
        "rate": rate,
        "sent": len(sent),
        "elapsed_s": elapsed,
        "late_sends": late,
        "errors": errors,
        "ack_p50_ms": _ms(percentile(acks, 0.5)),
        "ack_p99_ms": _ms(percentile(acks, 0.99)),
        "send_times": [(oid, wall) for oid, wall, _ in sent],
        **CpuSample(config.get("server_pid")).usage_since(start_sample),
    }


async def burst(config: dict[str, Any]) -> dict[str, Any]:
    per_body = int(config["events_per_body"])
    total = int(config["total"])
    requests = build_requests(config, total // per_body, per_body)
    concurrency = int(config["concurrency"])
    errors: dict[str, int] = {}
    accepted = 0
    queue = list(reversed(requests))
    start_sample = CpuSample(config.get("server_pid"))

    async def sender(http: Client) -> None:
        nonlocal accepted
        while queue:
            request = queue.pop()
            status, content = await post(http, request)
            accepted += acknowledged(config, status, content, len(request.object_ids))
            if status != "200":
                errors[status] = errors.get(status, 0) + 1

    http = client(config, concurrency)
    try:
        began_wall = time.time()
        began = time.perf_counter()
        await asyncio.gather(*(sender(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    finally:
        await http.aclose()
    return {
        "mode": "burst",
        "source": config.get("source", "hubspot"),
        "client": config.get("client", "raw"),
        "events": total,
        "accepted": accepted,
        "errors": errors,
        "started_at": began_wall,
        "intake_s": elapsed,
        **CpuSample(config.get("server_pid")).usage_since(start_sample),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def run_loop(coroutine: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """Run on uvloop (as uvicorn does on the server side), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main() -> None:
    config = json.loads(sys.argv[1])
    modes = {"closed": closed_loop, "rate": steady_rate, "burst": burst}
    result = run_loop(modes[config["mode"]](config))
    # A file, not stdout: the send times of a rate run are larger than a pipe's buffer.
    Path(config["output"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
