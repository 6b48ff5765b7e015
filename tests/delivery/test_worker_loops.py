"""The worker's delivery loop: a second batch in flight while a backlog lasts, one otherwise."""

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.config import Settings
from syncgate.delivery.models import Target
from syncgate.delivery.worker import Worker


class Batches:
    """A deliverer stand-in: `waiting` records go out in full batches, each call taking a while."""

    target = Target.SALESFORCE
    batch_size = 200

    def __init__(self, waiting: int) -> None:
        self.waiting = waiting
        self.in_flight = self.most_in_flight = self.calls = 0
        self.drained = asyncio.Event()

    async def probe(self) -> bool:
        return True

    async def run_once(self, *, backlog: bool = False) -> int:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.01)  # the platform's answer
        taken = min(self.waiting, self.batch_size)
        self.waiting -= taken
        self.in_flight -= 1
        if not self.waiting:
            self.drained.set()
        return taken


async def test_two_batches_are_in_flight_while_they_come_full_and_one_when_idle(
    settings: Settings, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    worker = Worker(settings.model_copy(update={"worker_poll_seconds": 0.02}), session_factory)
    worker.batches_in_flight = 2  # SQLite's default is 1
    batches = Batches(waiting=2_000)
    loop = asyncio.create_task(worker._deliveries(batches, asyncio.Event()))  # type: ignore[arg-type]
    try:
        async with asyncio.timeout(10):
            await batches.drained.wait()
        assert batches.most_in_flight == 2

        # Idle: only one loop polls; the second waits for the next full batch.
        batches.most_in_flight, calls = 0, batches.calls
        await asyncio.sleep(0.3)
        assert batches.calls > calls
        assert batches.most_in_flight == 1
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await worker.http.aclose()
