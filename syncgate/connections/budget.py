"""HubSpot's burst window kept in the database, so that every worker draws from one budget."""

import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.config import Settings
from syncgate.connections.breaker import locked_status
from syncgate.db import transaction
from syncgate.platforms.hubspot.client import RateWindow, RequestBudget

HUBSPOT_WINDOW_SECONDS = 10.0
# A request holds its slot this much longer than the window: the workers' calls reach HubSpot
# after slightly different delays, and HubSpot counts arrivals, not our start times.
SLACK_SECONDS = 0.25


class SharedWindow:
    """A `RateWindow` stored in the platform's `platform_status` row: each reservation reads and
    writes it under the row lock, so workers on any number of hosts share one window (their
    clocks must agree to a fraction of a second, as NTP keeps them)."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        platform: str,
        limit: int,
        seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.session_factory = session_factory
        self.platform = platform
        self.limit = limit
        self.seconds = seconds + SLACK_SECONDS
        self.clock = clock

    async def reserve(self, count: int = 1) -> float:
        async with transaction(self.session_factory) as session:
            row = await locked_status(session, self.platform)
            window = RateWindow(
                self.limit, self.seconds, list(row.budget_sent), row.budget_paused_until
            )
            wait = window.reserve(self.clock(), count)
            row.budget_sent, row.budget_paused_until = window.sent, window.paused_until
        return wait

    async def pause(self, seconds: float) -> None:
        async with transaction(self.session_factory) as session:
            row = await locked_status(session, self.platform)
            row.budget_paused_until = max(row.budget_paused_until, self.clock() + seconds)


def shared_hubspot_budget(
    config: Settings, session_factory: async_sessionmaker[AsyncSession]
) -> RequestBudget:
    """The worker's HubSpot budget: its burst window is the one all workers share."""
    window = SharedWindow(
        session_factory,
        "hubspot",
        config.hubspot_requests_per_10_seconds,
        HUBSPOT_WINDOW_SECONDS,
    )
    return RequestBudget(burst=window)
