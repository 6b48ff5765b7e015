"""Limit what syncs: the inclusion segment dropdown, resync and its progress endpoint."""

import re
from collections.abc import Callable
from typing import Any

from console.helpers import Console
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.jobs.models import Job, JobKind, JobStatus
from syncgate.sync import preferences, segments
from syncgate.sync.models import Segment, SegmentType

CUSTOMERS = {"property": "lifecyclestage", "operator": "eq", "value": "customer"}
Seed = Callable[..., Any]


async def make_segments(factory: async_sessionmaker[AsyncSession]) -> tuple[Segment, Segment]:
    async with factory() as session, session.begin():
        active = await segments.create_segment(session, "Customers", SegmentType.ACTIVE, CUSTOMERS)
        static = await segments.create_segment(session, "Fair", SegmentType.STATIC, None)
    return active, static


async def inclusion_id(factory: async_sessionmaker[AsyncSession]) -> int | None:
    async with factory() as session, session.begin():
        return (await preferences.load_settings(session)).inclusion_segment_id


async def test_dropdown_lists_active_segments_and_disables_static_ones(
    console: Console, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    active, static = await make_segments(session_factory)
    page = await console.get("/console")
    assert page.status_code == 200
    assert '<label for="inclusion-segment">Sync only contacts in</label>' in page.text
    assert '<option value="" selected>No segment (sync everything)</option>' in page.text
    assert f'<option value="{active.id}">Customers (0 contacts)</option>' in page.text
    assert re.search(rf'<option value="{static.id}" disabled>Fair — static', page.text)
    assert "+ Create inclusion segment" in page.text
    assert "Currently no segment is chosen: every contact may sync." in page.text


async def test_choosing_applies_at_once_and_says_nothing_is_queued(
    console: Console, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    active, _ = await make_segments(session_factory)
    response = await console.post("/console/inclusion-segment", {"segment_id": str(active.id)})
    assert response.status_code == 303 and response.headers["location"] == "/console"
    assert await inclusion_id(session_factory) == active.id
    page = await console.follow(response)
    assert "Only contacts in “Customers” sync from now on" in page.text
    assert "Nothing is synced by this change itself" in page.text
    assert f'<option value="{active.id}" selected>' in page.text
    assert "Currently only contacts in" in page.text

    cleared = await console.follow(await console.post("/console/inclusion-segment", {}))
    assert "No inclusion segment: every contact may sync." in cleared.text
    assert await inclusion_id(session_factory) is None


async def test_a_static_segment_is_refused_with_the_services_message(
    console: Console, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    _, static = await make_segments(session_factory)
    response = await console.post("/console/inclusion-segment", {"segment_id": str(static.id)})
    assert response.status_code == 422
    assert "The inclusion segment was not changed" in response.text
    assert "only an active segment can be the inclusion segment" in response.text
    assert await inclusion_id(session_factory) is None


async def test_unknown_or_malformed_choices_are_refused(console: Console) -> None:
    unknown = await console.post("/console/inclusion-segment", {"segment_id": "4242"})
    assert unknown.status_code == 422 and "segment 4242 does not exist" in unknown.text
    malformed = await console.post("/console/inclusion-segment", {"segment_id": "abc"})
    assert malformed.status_code == 422 and "Segment: Input should be a valid integer" in (
        malformed.text
    )


async def test_create_choice_goes_to_the_builder(console: Console) -> None:
    response = await console.post("/console/inclusion-segment", {"segment_id": "__new__"})
    assert response.headers["location"] == "/console/segments/new?for=inclusion"


async def test_resync_queues_a_job_and_shows_its_progress(
    console: Console, seed: Seed, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await seed("ada@example.com", lifecyclestage="customer")
    active, _ = await make_segments(session_factory)
    await console.post("/console/inclusion-segment", {"segment_id": str(active.id)})
    page = await console.get("/console")
    assert "Resync now" in page.text

    response = await console.post(f"/console/segments/{active.id}/resync")
    assert response.status_code == 303
    location = response.headers["location"]
    match = re.fullmatch(r"/console\?job=(\d+)#progress", location)
    assert match, location
    job_id = int(match.group(1))
    async with session_factory() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        assert (job.kind, job.params) == (JobKind.SEGMENT_RESYNC, {"segment_id": active.id})

    page = await console.follow(response)
    assert f"Resync of “Customers” started (job {job_id})" in page.text
    assert '<progress id="job-progress" max="100" value="0"' in page.text
    assert f'data-job-progress="/console/jobs/{job_id}"' in page.text

    queued = (await console.get(f"/console/jobs/{job_id}")).json()
    assert (queued["status"], queued["finished"], queued["percent"]) == ("queued", False, 0)

    async with session_factory() as session, session.begin():
        await session.execute(
            update(Job).where(Job.id == job_id).values(status=JobStatus.DONE, total=1, succeeded=1)
        )
    done = (await console.get(f"/console/jobs/{job_id}")).json()
    assert (done["status"], done["finished"], done["percent"], done["processed"]) == (
        "done",
        True,
        100,
        1,
    )
    assert done["text"].startswith("Done: 1 of 1 members processed (100%)")


async def test_resync_from_a_segment_page_returns_there(
    console: Console, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    active, _ = await make_segments(session_factory)
    response = await console.post(f"/console/segments/{active.id}/resync", {"back": "segment"})
    assert response.headers["location"].startswith(f"/console/segments/{active.id}?job=")
    page = await console.follow(response)
    assert "Resync progress" in page.text


async def test_job_progress_of_an_unknown_job(console: Console) -> None:
    response = await console.get("/console/jobs/999")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert (await console.post("/console/segments/999/resync")).status_code == 404
