"""Benchmark: a HubSpot backfill job over N contacts held by the fake HubSpot.

Runs the real job runner, HubSpot client and request budget in-process against a fake HubSpot
served on 127.0.0.1, stores into a fresh SQLite file (or the given database URL), and prints
how long storing every contact and recomputing the active segments took.

    .venv/bin/python bench/backfill.py --contacts 20000
"""

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import httpx  # noqa: E402
from fakes.hubspot import FakeHubSpot, create_hubspot_app  # noqa: E402
from fakes.server import FakeServer  # noqa: E402
from sqlalchemy import select  # noqa: E402

from syncgate.config import Settings  # noqa: E402
from syncgate.db import create_db_engine, create_session_factory, transaction  # noqa: E402
from syncgate.jobs.models import Job, JobKind, JobStatus  # noqa: E402
from syncgate.jobs.runner import JobRunner  # noqa: E402
from syncgate.migrate import upgrade_to_head  # noqa: E402
from syncgate.platforms.hubspot.client import HubSpotClient  # noqa: E402
from syncgate.sync.models import Segment, SegmentType  # noqa: E402
from syncgate.sync.segments import create_segment  # noqa: E402


async def backfill(url: str, contacts: int) -> None:
    fake = FakeHubSpot(portal_id=1, shuffle_batch_results=False)
    for i in range(contacts):
        fake.add_contact(
            email=f"c{i}@example.com",
            firstname=f"F{i}",
            lifecyclestage="customer" if i % 4 == 0 else "lead",
        )
    with FakeServer(create_hubspot_app(fake)) as server:
        config = Settings(
            database_url=url,
            hubspot_access_token=fake.access_token,
            hubspot_api_base=server.url,
            _env_file=None,
        )
        engine = create_db_engine(url)
        factory = create_session_factory(engine)
        customers = {"property": "lifecyclestage", "operator": "eq", "value": "customer"}
        async with transaction(factory) as session:
            await create_segment(session, "customers", SegmentType.ACTIVE, customers)
            job = Job(kind=JobKind.HUBSPOT_BACKFILL, params={}, cursor={})
            session.add(job)
            await session.flush()
            job_id = job.id
        async with httpx.AsyncClient(timeout=30) as http:
            runner = JobRunner(config, factory, HubSpotClient.from_settings(config, http), None)
            started = time.perf_counter()
            status = JobStatus.RUNNING.value
            while status not in (JobStatus.DONE, JobStatus.FAILED):
                await runner.run_once()
                async with factory() as session:
                    found = await session.get(Job, job_id)
                    assert found is not None
                    status, stored = found.status, found.succeeded
            elapsed = time.perf_counter() - started
        async with factory() as session:
            segment = (await session.scalars(select(Segment))).one()
        await engine.dispose()
    print(
        f"backfill of {contacts} contacts: {status}, {stored} stored in {elapsed:.0f} s "
        f"({elapsed / max(stored, 1) * 1000:.1f} ms per contact); "
        f"segment '{segment.name}' {segment.status} with {segment.size} members"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/backfill.db"
        upgrade_to_head(url)
        asyncio.run(backfill(url, args.contacts))


if __name__ == "__main__":
    main()
