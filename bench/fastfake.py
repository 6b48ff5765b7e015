"""A fast fake of the few HubSpot and Salesforce calls syncgate makes, for benchmarks.

Its own process (`python bench/fastfake.py --port P`), so its CPU is not the service's. Unlike
tests/fakes it checks nothing and validates nothing: records live in dicts, email lookups use an
index, and every answer is built in a few microseconds, so a benchmark measures syncgate and not
the fake. Control routes (`/_seed/...`, `/_stats`) let the benchmark seed records and read what
arrived. Served by uvicorn (uvloop + httptools) as a bare ASGI app.

Salesforce: `POST /services/oauth2/token`, `GET …/query` (`WHERE Email IN (…)` or
`WHERE Id IN (…)`), `POST|PATCH …/composite/sobjects`.
HubSpot: `GET /crm/v3/objects/contacts` (paging), `POST …/batch/read|update|upsert`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

ALWAYS_RETURNED = ("createdate", "lastmodifieddate", "hs_object_id")
_IN_LIST = re.compile(r"WHERE\s+(Email|Id)\s+IN\s*\(([^)]*)\)", re.IGNORECASE)
_SELECT = re.compile(r"SELECT\s+(.*?)\s+FROM\s+(\w+)", re.IGNORECASE | re.DOTALL)
_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")
STAMP = "2026-01-01T00:00:00.000+0000"


class Fake:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}  # Salesforce Id → fields (with attributes)
        self.by_email: dict[str, list[str]] = {}
        self.ids = itertools.count(1)
        self.contacts: dict[str, dict[str, str | None]] = {}  # HubSpot id → properties
        self.contact_order: list[str] = []
        self.reset_stats()

    def reset_stats(self) -> None:
        self.created: Counter[str] = Counter()  # Salesforce creates per lower-case email
        self.updated = 0  # Salesforce records updated
        self.hubspot_written = 0  # HubSpot inputs written
        self.write_calls: list[int] = []  # records per Salesforce / HubSpot write call
        self.calls: Counter[str] = Counter()
        self.last_write = 0.0  # wall clock of the last write that changed a record

    # -- Salesforce ---------------------------------------------------------------------------

    def add_record(self, object_type: str, fields: dict[str, Any]) -> str:
        prefix = "00Q" if object_type == "Lead" else "003"
        record_id = fields.get("Id") or f"{prefix}{next(self.ids):012d}AAA"
        record = {
            "attributes": {"type": object_type},
            **fields,
            "Id": record_id,
            "LastModifiedDate": STAMP,
        }
        self.records[record_id] = record
        email = str(fields.get("Email") or "").lower()
        if email:
            self.by_email.setdefault(email, []).append(record_id)
        return record_id

    def query(self, soql: str) -> dict[str, Any]:
        self.calls["query"] += 1
        found = _IN_LIST.search(soql)
        select = _SELECT.search(soql)
        if found is None or select is None:
            return {"totalSize": 0, "done": True, "records": []}
        column, raw = found.group(1).lower(), found.group(2)
        object_type = select.group(2)
        columns = [c.strip() for c in select.group(1).split(",")]
        values = [v.replace("\\'", "'") for v in _LITERAL.findall(raw)]
        if column == "email":
            ids = [i for v in values for i in self.by_email.get(v.lower(), ())]
        else:
            ids = [v for v in values if v in self.records]
        rows = []
        for record_id in ids:
            record = self.records[record_id]
            if record["attributes"]["type"] != object_type:
                continue
            rows.append({"attributes": record["attributes"], **{c: record.get(c) for c in columns}})
        return {"totalSize": len(rows), "done": True, "records": rows}

    def collection(self, method: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        records = body.get("records") or []
        self.calls["write"] += 1
        self.write_calls.append(len(records))
        results = []
        for item in records:
            fields = {k: v for k, v in item.items() if k != "attributes"}
            object_type = item["attributes"]["type"]
            if method == "POST":
                record_id = self.add_record(object_type, fields)
                self.created[str(fields.get("Email") or "").lower()] += 1
            else:
                record_id = fields.pop("id")
                self.records[record_id].update(fields)
                self.updated += 1
            results.append({"id": record_id, "success": True, "errors": []})
        self.last_write = time.time()
        return results

    # -- HubSpot ------------------------------------------------------------------------------

    def add_contacts(self, count: int, start: int, properties: dict[str, Any]) -> None:
        """`count` contacts with ids from `start`; `{i}` in a property value is the index."""
        for index in range(start, start + count):
            contact_id = str(index)
            values = {k: str(v).replace("{i}", str(index)) for k, v in properties.items()}
            if contact_id not in self.contacts:
                self.contact_order.append(contact_id)
            self.contacts[contact_id] = {
                **values,
                "createdate": STAMP,
                "lastmodifieddate": STAMP,
                "hs_object_id": contact_id,
            }

    def render(self, contact_id: str, names: list[str]) -> dict[str, Any]:
        stored = self.contacts[contact_id]
        return {
            "id": contact_id,
            "properties": {n: stored.get(n) for n in [*names, *ALWAYS_RETURNED]},
            "createdAt": "2026-01-01T00:00:00.000Z",
            "updatedAt": "2026-01-01T00:00:00.000Z",
            "archived": False,
        }

    def list_contacts(self, query: dict[str, list[str]]) -> dict[str, Any]:
        self.calls["list"] += 1
        limit = int(query.get("limit", ["10"])[0])
        after = int(query.get("after", ["0"])[0])
        names = query.get("properties", [""])[0].split(",")
        page = self.contact_order[after : after + limit]
        body: dict[str, Any] = {"results": [self.render(i, names) for i in page]}
        if after + limit < len(self.contact_order):
            body["paging"] = {"next": {"after": str(after + limit)}}
        return body

    def batch(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls[operation] += 1
        inputs = body.get("inputs") or []
        if operation == "read":
            names = list(body.get("properties") or [])
            ids = [str(i["id"]) for i in inputs]
            results = [self.render(i, names) for i in ids if i in self.contacts]
            return {"status": "COMPLETE", "results": results}
        self.write_calls.append(len(inputs))
        results = []
        for item in inputs:
            contact_id = str(item.get("id"))
            if operation == "upsert" and contact_id not in self.contacts:
                contact_id = str(1_000_000_000 + len(self.contacts))
                self.contacts[contact_id] = {}
                self.contact_order.append(contact_id)
            self.contacts.setdefault(contact_id, {}).update(item.get("properties") or {})
            self.hubspot_written += 1
            results.append(
                {"id": contact_id, "properties": self.contacts[contact_id], "new": False}
            )
        self.last_write = time.time()
        return {"status": "COMPLETE", "results": results}

    def stats(self) -> dict[str, Any]:
        return {
            "records": len(self.records),
            "created": sum(self.created.values()),
            "duplicates": sum(n - 1 for n in self.created.values() if n > 1),
            "updated": self.updated,
            "hubspot_written": self.hubspot_written,
            "write_calls": self.write_calls,
            "calls": dict(self.calls),
            "last_write": self.last_write,
        }


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


# An org's allowance large enough that no burst comes near the share where work stops.
DAILY_API_REQUESTS = 5_000_000


def make_app(fake: Fake) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        method, path = scope["method"], scope["path"]
        raw = await _body(receive)
        query = parse_qs(scope.get("query_string", b"").decode())
        answer: Any = None
        status = 200
        if path == "/services/oauth2/token" or path == "/oauth/v1/token":
            host = dict(scope["headers"]).get(b"host", b"127.0.0.1").decode()
            answer = {
                "access_token": "fast-token",
                "instance_url": f"http://{host}",
                "token_type": "Bearer",
                "expires_in": 1800,
            }
        elif path.endswith("/limits"):
            answer = {
                "DailyApiRequests": {"Max": DAILY_API_REQUESTS, "Remaining": DAILY_API_REQUESTS}
            }
        elif path.endswith("/query"):
            answer = fake.query(query.get("q", [""])[0])
        elif path.endswith("/composite/sobjects"):
            answer = fake.collection(method, json.loads(raw))
        elif path == "/crm/v3/objects/contacts" and method == "GET":
            answer = fake.list_contacts(query)
        elif path.startswith("/crm/v3/objects/contacts/batch/"):
            answer = fake.batch(path.rsplit("/", 1)[1], json.loads(raw))
        elif path == "/_seed/salesforce":
            seeded = json.loads(raw)
            for fields in seeded["records"]:
                fake.add_record(seeded["object"], fields)
            answer = {"records": len(fake.records)}
        elif path == "/_seed/hubspot":
            seeded = json.loads(raw)
            fake.add_contacts(seeded["count"], seeded["start"], seeded["properties"])
            answer = {"contacts": len(fake.contacts)}
        elif path == "/_stats":
            answer = fake.stats()
        elif path == "/_reset_stats":
            fake.reset_stats()
            answer = {}
        else:
            status, answer = 404, [{"errorCode": "NOT_FOUND", "message": path}]
        body = json.dumps(answer).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        if path.startswith("/services/data/"):  # as every real answer carries it
            headers.append((b"sforce-limit-info", b"api-usage=1/%d" % DAILY_API_REQUESTS))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        make_app(Fake()),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
