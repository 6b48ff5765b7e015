"""Per-platform circuit breaker and API allowance, shared by every worker through one row of
`platform_status` per platform.

Consecutive whole-call failures (the platform down or unreachable, out of API allowance, or
refusing our credentials) open the breaker. While it is open nothing is sent, so no delivery
spends an attempt; one worker makes one probe call each time `next_probe_at` comes, at intervals
that double up to a cap. A probe that passes half-opens it: the next batch closes it, or opens it
again at once with a longer interval.

The daily API allowance the platform reports is kept beside it: jobs stop at one share of it,
deliveries at a higher one, and while it is over the jobs' share a probe reads it again every
minute, so work resumes when the allowance recovers.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.config import Settings
from syncgate.connections.credentials import PLATFORM_NAMES
from syncgate.connections.models import Breaker, PlatformStatus
from syncgate.db import insert_ignoring_conflicts, transaction
from syncgate.models import utc_now
from syncgate.platforms.usage import ApiUsage

log = logging.getLogger("syncgate.connections")

# While the allowance is over the jobs' share, it is read again this often to see it recover.
USAGE_REFRESH = timedelta(seconds=60)
# A probe whose worker died before answering is taken over by another worker after this.
PROBE_LEASE = timedelta(seconds=60)


class Outcome(StrEnum):
    ANSWERED = "answered"  # the platform answered (whatever it said about each record)
    OUTAGE = "outage"  # the call as a whole failed in a way every other call would share
    NONE = "none"  # nothing learnt about the platform (throttled, or an error of ours)


@dataclass(frozen=True)
class Gate:
    """What a worker may do with a platform right now."""

    deliveries: bool
    jobs: bool  # non-urgent work: resync, import, backfill, and the deliveries they queued
    probe: bool = False  # this worker took the probe call


def over_share(row: PlatformStatus | None, percent: int) -> bool:
    """Whether the platform's last reported daily API usage reached `percent` of its allowance."""
    if row is None or row.api_used is None or not row.api_allowed:
        return False
    return row.api_used * 100 >= row.api_allowed * percent


def gate_of(row: PlatformStatus | None, config: Settings) -> Gate:
    if row is None:
        return Gate(deliveries=True, jobs=True)
    deliveries = row.breaker != Breaker.OPEN and not over_share(
        row, config.api_share_for_deliveries
    )
    return Gate(
        deliveries=deliveries, jobs=deliveries and not over_share(row, config.api_share_for_jobs)
    )


async def locked_status(session: AsyncSession, platform: str) -> PlatformStatus:
    """The platform's row, locked for this transaction; created on first use."""
    row = await session.get(PlatformStatus, platform, with_for_update=True)
    if row is None:
        await session.execute(
            insert_ignoring_conflicts(session, PlatformStatus.__table__, [{"platform": platform}])
        )
        row = await session.get(
            PlatformStatus, platform, with_for_update=True, populate_existing=True
        )
        assert row is not None
    return row


class Connection:
    """One worker's handle on one platform's shared breaker and allowance."""

    def __init__(
        self, config: Settings, session_factory: async_sessionmaker[AsyncSession], platform: str
    ) -> None:
        self.config = config
        self.session_factory = session_factory
        self.platform = platform
        self.name = PLATFORM_NAMES.get(platform, platform)

    async def gate(self, *, take_probe: bool = True) -> Gate:
        """May deliveries and jobs go out now; and is a probe due (then this worker takes it)?"""
        now = utc_now()
        async with self.session_factory() as session:
            row = await session.get(PlatformStatus, self.platform)
        due = row is not None and row.next_probe_at is not None and row.next_probe_at <= now
        if take_probe and due and await self._take_probe(now):
            return Gate(deliveries=False, jobs=False, probe=True)
        return gate_of(row, self.config)

    async def _take_probe(self, now: datetime) -> bool:
        # Atomic on both databases: of all workers that see the probe due, one updates the row.
        async with transaction(self.session_factory) as session:
            result = await session.execute(
                update(PlatformStatus)
                .where(
                    PlatformStatus.platform == self.platform,
                    PlatformStatus.next_probe_at <= now,
                )
                .values(next_probe_at=now + PROBE_LEASE)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def record(
        self,
        outcome: Outcome,
        message: str | None = None,
        usage: ApiUsage | None = None,
        *,
        probed: bool = False,
    ) -> None:
        """Remember how a call (a batch, a job's chunk, or the probe) went."""
        if outcome is Outcome.NONE and usage is None and not probed:
            return
        async with transaction(self.session_factory) as session:
            row = await locked_status(session, self.platform)
            now = utc_now()
            if usage is not None and (row.api_usage_at is None or usage.at >= row.api_usage_at):
                row.api_used, row.api_allowed, row.api_usage_at = (
                    usage.used,
                    usage.allowed,
                    usage.at,
                )
            if outcome is Outcome.ANSWERED:
                self._answered(row, now, probed=probed)
            elif outcome is Outcome.OUTAGE:
                self._failed(row, now, message or "the call failed", probed=probed)
            self._schedule_probe(row, now, probed=probed)

    def _answered(self, row: PlatformStatus, now: datetime, *, probed: bool) -> None:
        row.last_success_at = now
        row.consecutive_failures = 0
        if probed and row.breaker == Breaker.OPEN:
            row.breaker = Breaker.HALF_OPEN
            log.info("%s answered the probe call; deliveries resume", self.name)
        elif not probed and row.breaker != Breaker.CLOSED:
            log.info("%s is available again", self.name)
            row.breaker = Breaker.CLOSED
            row.opened_at = row.probe_interval = row.next_probe_at = None

    def _failed(self, row: PlatformStatus, now: datetime, message: str, *, probed: bool) -> None:
        row.last_error, row.last_error_at = message[:2000], now
        row.consecutive_failures += 1
        base = self.config.breaker_probe_seconds
        longer = min((row.probe_interval or base) * 2, self.config.breaker_probe_max_seconds)
        if row.breaker == Breaker.OPEN:
            if probed:
                row.probe_interval = longer
                row.next_probe_at = now + timedelta(seconds=longer)
            return
        if (
            row.breaker == Breaker.CLOSED
            and row.consecutive_failures < self.config.breaker_failures
        ):
            return
        row.probe_interval = longer if row.breaker == Breaker.HALF_OPEN else base
        row.breaker = Breaker.OPEN
        row.opened_at = row.opened_at or now
        row.next_probe_at = now + timedelta(seconds=row.probe_interval)
        log.warning(
            "%s unavailable since %s; nothing is sent until a probe passes (next in %g s): %s",
            self.name,
            row.opened_at.isoformat(),
            row.probe_interval,
            message,
        )

    def _schedule_probe(self, row: PlatformStatus, now: datetime, *, probed: bool) -> None:
        if row.breaker == Breaker.OPEN:
            return  # opening or a failed probe set it
        if over_share(row, self.config.api_share_for_jobs):
            if probed or row.next_probe_at is None:
                row.next_probe_at = now + USAGE_REFRESH
        else:
            row.next_probe_at = None
