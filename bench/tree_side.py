"""The part of bench/processing.py that runs syncgate's own code, in a child process.

`bench/processing.py` starts this module with PYTHONPATH set to a code tree (the working tree,
or a `git worktree` of the baseline commit), so `import syncgate` is that tree's code. It uses
only seams both trees have (migrations, the inbox store, the tables, the job runner) and prints
one JSON object on its last line.

    python bench/tree_side.py migrate URL
    python bench/tree_side.py seed-known URL COUNT      # contacts linked to Leads 00Q…
    python bench/tree_side.py fill URL COUNT SCENARIO   # the burst, in one transaction
    python bench/tree_side.py check URL
    python bench/tree_side.py backfill URL FAKE_URL     # the HubSpot backfill job, in process
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

PORTAL_ID = 62515
KNOWN_BASE = 1_000_000  # HubSpot ids of the contacts the store knows
NEW_BASE = 5_000_000  # HubSpot ids of contacts the store has never seen


def lead_id(index: int) -> str:
    return f"00Q{index:012d}AAA"


def known_properties(index: int) -> dict[str, str]:
    return {
        "email": f"known{index}@bench.example",
        "firstname": f"First{index}",
        "lastname": f"Last{index}",
        "company": f"Company {index % 500}",
        "jobtitle": "Engineer",
    }


def burst_events(count: int, scenario: str, occurred_ms: int) -> list[dict[str, Any]]:
    """`known`: a mapped property of contacts the store knows and has linked changes once each;
    `new`: the email of contacts the store has never seen (HubSpot has them)."""
    events = []
    for index in range(count):
        if scenario == "known":
            object_id, name, value = KNOWN_BASE + index, "jobtitle", f"Director {index}"
        else:
            # The email HubSpot has (bench/processing.py seeds the fake with it): a read made
            # after the change agrees with the change.
            object_id = NEW_BASE + index
            name, value = "email", f"new{object_id}@bench.example"
        events.append(
            {
                "eventId": 10**9 + index,
                "subscriptionId": 4578255,
                "portalId": PORTAL_ID,
                "appId": 42,
                "occurredAt": occurred_ms + index,
                "subscriptionType": "contact.propertyChange",
                "attemptNumber": 0,
                "objectId": object_id,
                "changeSource": "CRM_UI",
                "sourceId": "userId:52530071",
                "propertyName": name,
                "propertyValue": value,
            }
        )
    return events


async def _engine(url: str) -> Any:
    from syncgate.db import create_db_engine

    return create_db_engine(url)


async def seed_known(url: str, count: int) -> dict[str, Any]:
    """`count` contacts with five properties each, linked to Leads with the same values."""
    from sqlalchemy import insert

    from syncgate.sync.filters import fold, numeric_value
    from syncgate.sync.models import Contact, ContactProperty

    engine = await _engine(url)
    stamp = int(time.time() * 1000) - 3_600_000
    contacts, properties = [], []
    for index in range(count):
        values = known_properties(index)
        contacts.append(
            {
                "id": index + 1,
                "hubspot_id": str(KNOWN_BASE + index),
                "email": values["email"],
                "salesforce_id": lead_id(index),
                "salesforce_object": "Lead",
                "salesforce_values": {
                    "Email": values["email"],
                    "FirstName": values["firstname"],
                    "LastName": values["lastname"],
                    "Company": values["company"],
                    "Title": values["jobtitle"],
                },
                "salesforce_modified_ms": stamp,
            }
        )
        properties += [
            {
                "contact_id": index + 1,
                "name": name,
                "value": value,
                "value_folded": fold(value),
                "value_number": numeric_value(value),
                "changed_at_ms": stamp,
            }
            for name, value in values.items()
        ]
    async with engine.begin() as connection:
        await connection.execute(insert(Contact), contacts)
        await connection.execute(insert(ContactProperty), properties)
        if connection.dialect.name == "postgresql":
            from sqlalchemy import text

            await connection.execute(
                text("SELECT setval('contacts_id_seq', (SELECT max(id) FROM contacts))")
            )
    await engine.dispose()
    return {"contacts": count, "properties": len(properties)}


async def fill(url: str, count: int, scenario: str) -> dict[str, Any]:
    from syncgate.db import create_session_factory, transaction
    from syncgate.inbox.store import store_hubspot_events
    from syncgate.platforms.hubspot.events import parse_body

    engine = await _engine(url)
    events = burst_events(count, scenario, int(time.time() * 1000))
    # Webhook bodies hold at most 1,000 events; one transaction stores them all at once.
    bodies = [parse_body(json.dumps(events[i : i + 1000]).encode()) for i in range(0, count, 1000)]
    async with transaction(create_session_factory(engine)) as session:
        stored = sum([await store_hubspot_events(session, parsed) for parsed in bodies])
    committed = time.time()
    await engine.dispose()
    return {"stored": stored, "committed_at": committed}


async def check(url: str) -> dict[str, Any]:
    from sqlalchemy import text

    engine = await _engine(url)
    answer: dict[str, Any] = {}
    async with engine.connect() as connection:
        for table, column in (
            ("inbox_events", "status"),
            ("deliveries", "status"),
            ("decisions", "decision"),
        ):
            rows = await connection.execute(
                text(f"SELECT {column}, count(*) FROM {table} GROUP BY {column}")
            )
            answer[table] = {str(key): int(n) for key, n in rows}
        answer["contacts"] = (
            await connection.execute(text("SELECT count(*) FROM contacts"))
        ).one()[0]
        answer["contact_properties"] = (
            await connection.execute(text("SELECT count(*) FROM contact_properties"))
        ).one()[0]
        segments = await connection.execute(text("SELECT name, status, size FROM segments"))
        answer["segments"] = [list(row) for row in segments]
        members = await connection.execute(
            text("SELECT segment_id, count(*) FROM segment_members GROUP BY segment_id")
        )
        answer["segment_members"] = {str(s): int(n) for s, n in members}
    await engine.dispose()
    return answer


BACKFILL_SEGMENTS = {
    "customers": {"property": "lifecyclestage", "operator": "eq", "value": "customer"},
    "nordics": {"property": "country", "operator": "in", "value": ["Denmark", "Sweden"]},
}


async def backfill(url: str, fake_url: str) -> dict[str, Any]:
    """The real backfill job, run by the real job runner and HubSpot client (its request budget
    lifted: HubSpot's lowest tier allows 100 calls per 10 s, which alone takes 100,000 contacts
    ≥ 99 s; the figure here is the service's own cost)."""
    import httpx

    from syncgate.config import Settings
    from syncgate.db import create_session_factory, transaction
    from syncgate.jobs.models import Job, JobKind, JobStatus
    from syncgate.jobs.runner import JobRunner
    from syncgate.platforms.hubspot.client import HubSpotClient, RequestBudget
    from syncgate.sync.models import SegmentType
    from syncgate.sync.segments import create_segment

    engine = await _engine(url)
    factory = create_session_factory(engine)
    config = Settings(
        database_url=url,
        hubspot_access_token="fast-token",
        hubspot_api_base=fake_url,
        _env_file=None,
    )
    async with transaction(factory) as session:
        for name, raw in BACKFILL_SEGMENTS.items():
            await create_segment(session, name, SegmentType.ACTIVE, raw)
        job = Job(kind=JobKind.HUBSPOT_BACKFILL, params={}, cursor={})
        session.add(job)
        await session.flush()
        job_id = job.id
    rss_start = _status_mb("VmRSS")
    async with httpx.AsyncClient(timeout=60) as http:
        client = HubSpotClient.from_settings(config, http)
        assert client is not None
        client.budget = RequestBudget(per_window=10**9, daily_limit=None)
        runner = JobRunner(config, factory, client, None)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        status, stored, chunks = JobStatus.RUNNING.value, 0, 0
        while status not in (JobStatus.DONE, JobStatus.FAILED):
            await runner.run_once()
            chunks += 1
            async with factory() as session:
                found = await session.get(Job, job_id)
                assert found is not None
                status, stored = found.status, found.succeeded
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    await engine.dispose()
    return {
        "status": status,
        "stored": stored,
        "chunks": chunks,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "rss_start_mb": rss_start,
        # VmHWM, not ru_maxrss: that one keeps the parent's size from before exec().
        "rss_peak_mb": _status_mb("VmHWM"),
    }


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status, in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def main(argv: list[str]) -> None:
    command, url, *rest = argv
    if command == "migrate":
        from syncgate.migrate import upgrade_to_head

        upgrade_to_head(url)
        result: dict[str, Any] = {"migrated": True}
    elif command == "seed-known":
        result = asyncio.run(seed_known(url, int(rest[0])))
    elif command == "fill":
        result = asyncio.run(fill(url, int(rest[0]), rest[1]))
    elif command == "check":
        result = asyncio.run(check(url))
    elif command == "backfill":
        result = asyncio.run(backfill(url, rest[0]))
    else:
        raise SystemExit(f"unknown command {command!r}")
    import syncgate

    result["code"] = syncgate.__file__
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
