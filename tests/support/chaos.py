"""Chaos helpers: lost responses and slow answers from the fakes, a webhook sender that behaves
like HubSpot (it redelivers what was not acknowledged), and a look into the service's queues."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from syncgate.delivery.models import Delivery, DeliveryStatus
from syncgate.inbox.models import InboxEvent, InboxStatus
from syncgate.models import utc_now

Scope = Any
Receive = Callable[[], Any]
Send = Callable[[Any], Any]


class _DroppedResponseFilter(logging.Filter):
    """Hide uvicorn's complaint about the responses this module cuts off on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_DroppedResponseFilter())


@dataclass
class FlakyNetwork:
    """An ASGI wrapper in front of a fake platform that makes some calls time out.

    For a seeded share of API calls (not the token endpoint) it either holds the call for a
    moment before answering (a slow platform), or lets the platform handle the call and then
    cuts the connection before the body is sent: the client sees a transport error, as after a
    timeout, although the platform applied the write. That is the case where a retry must not
    create a second record.
    """

    app: Any
    token_path: str
    lost: float = 0.03
    slow: float = 0.05
    slow_seconds: tuple[float, float] = (0.2, 1.0)
    seed: int = 0
    rng: random.Random = field(init=False)
    lock: threading.Lock = field(default_factory=threading.Lock)
    lost_calls: int = 0
    slow_calls: int = 0
    _lose_next: list[list[Any]] = field(default_factory=list)  # [path part, remaining]

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def lose_next(self, n: int = 1, *, path: str = "") -> None:
        """Apply the next ``n`` calls whose path contains ``path``, then lose their answers."""
        with self.lock:
            self._lose_next.append([path, n])

    def _draw(self, path: str) -> tuple[bool, float]:
        if path == self.token_path:
            return False, 0.0
        with self.lock:
            for rule in self._lose_next:
                if rule[1] > 0 and rule[0] in path:
                    rule[1] -= 1
                    self.lost_calls += 1
                    return True, 0.0
            roll = self.rng.random()
            if roll < self.lost:
                self.lost_calls += 1
                return True, 0.0
            if roll < self.lost + self.slow:
                self.slow_calls += 1
                return False, self.rng.uniform(*self.slow_seconds)
            return False, 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lose, delay = self._draw(scope["path"])
        if delay:
            await asyncio.sleep(delay)
        if not lose:
            await self.app(scope, receive, send)
            return

        async def cut(message: Any) -> None:
            # Start the answer (so the server cannot turn it into a 500), swallow the body;
            # returning without completing it makes uvicorn close the connection.
            if message["type"] == "http.response.start":
                await send(message)

        await self.app(scope, receive, cut)


@dataclass
class Batch:
    events: list[dict[str, Any]]
    attempts: int = 0


class HubSpotSender(threading.Thread):
    """Sends batches of webhook events like HubSpot: whatever is not acknowledged with a 2xx
    (refused, connection error, timeout) is delivered again later, with a higher attemptNumber."""

    def __init__(
        self,
        send: Callable[[list[dict[str, Any]]], httpx.Response],
        batches: list[list[dict[str, Any]]],
        *,
        pause: float = 0.0,
        retry_pause: float = 0.2,
    ) -> None:
        super().__init__(name="hubspot-sender", daemon=True)
        self._send = send
        self.queue: deque[Batch] = deque(Batch(b) for b in batches)
        self.pause = pause
        self.retry_pause = retry_pause
        self.acknowledged = 0  # batches
        self.refused = 0  # answers other than 200
        self.failed = 0  # transport errors
        self.accepted_events = 0
        self.duplicate_events = 0
        self.statuses: dict[int, int] = {}
        self.latencies: list[float] = []  # of acknowledged calls, seconds
        self.error: BaseException | None = None
        self._stop = threading.Event()

    def run(self) -> None:
        try:
            while self.queue and not self._stop.is_set():
                batch = self.queue[0]
                events = [{**e, "attemptNumber": batch.attempts} for e in batch.events]
                batch.attempts += 1
                began = time.monotonic()
                try:
                    response = self._send(events)
                except httpx.TransportError:
                    self.failed += 1
                    self._stop.wait(self.retry_pause)
                    continue
                self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
                if response.status_code != 200:
                    if response.status_code not in (500, 502, 503, 504):
                        raise AssertionError(
                            f"webhook refused for good: {response.status_code} {response.text}"
                        )
                    self.refused += 1
                    self._stop.wait(self.retry_pause)
                    continue
                answer = response.json()
                self.latencies.append(time.monotonic() - began)
                self.accepted_events += answer["accepted"]
                self.duplicate_events += answer["duplicates"]
                self.acknowledged += 1
                self.queue.popleft()
                if self.pause:
                    self._stop.wait(self.pause)
        except BaseException as error:  # reported by the test thread
            self.error = error

    def stop(self) -> None:
        self._stop.set()

    @property
    def done(self) -> bool:
        return not self.queue


@dataclass(frozen=True)
class Backlog:
    inbox_total: int
    inbox_pending: int
    inbox_failed: int
    deliveries_open: int  # pending or in flight
    deliveries_dead: int

    @property
    def drained(self) -> bool:
        return self.inbox_pending == 0 and self.deliveries_open == 0


def backlog(engine: Engine) -> Backlog:
    """What the service still has to do, read straight from its database."""

    def count(session: Session, model: Any, *conditions: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0)

    with Session(engine) as session:
        return Backlog(
            inbox_total=count(session, InboxEvent),
            inbox_pending=count(session, InboxEvent, InboxEvent.status == InboxStatus.PENDING),
            inbox_failed=count(session, InboxEvent, InboxEvent.status == InboxStatus.FAILED),
            deliveries_open=count(
                session,
                Delivery,
                Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT]),
            ),
            deliveries_dead=count(session, Delivery, Delivery.status == DeliveryStatus.DEAD),
        )


def _leased(session: Session) -> tuple[dict[int, Any], dict[int, Any]]:
    """Inbox events and deliveries claimed (or waiting for a retry) and not due yet."""
    now = utc_now()
    inbox = session.execute(
        select(InboxEvent.id, InboxEvent.next_attempt_at).where(
            InboxEvent.status == InboxStatus.PENDING, InboxEvent.next_attempt_at > now
        )
    )
    deliveries = session.execute(
        select(Delivery.id, Delivery.lease_until).where(
            Delivery.status == DeliveryStatus.IN_FLIGHT, Delivery.lease_until > now
        )
    )
    return {i: at for i, at in inbox}, {i: at for i, at in deliveries}


def expire_leases(engine: Engine, *, settle: float = 0.0) -> tuple[int, int]:
    """Fast-forward the clock for claims whose worker is gone.

    A worker that dies after claiming inbox events or deliveries (or whose database went away
    under it) leaves them to be claimed again when their lease runs out, minutes later.
    Waiting for that would only test the clock, so the test lets those leases run out now.
    With no worker alive every claim is abandoned; with a live one, ``settle`` > 0 releases
    only the claims that stayed unchanged for that many seconds (a live round ends sooner).
    Returns how many (inbox events, deliveries) were released.
    """
    with Session(engine) as session:
        inbox, deliveries = _leased(session)
    if settle:
        time.sleep(settle)
        with Session(engine) as session:
            inbox_now, deliveries_now = _leased(session)
        inbox = {k: v for k, v in inbox.items() if inbox_now.get(k) == v}
        deliveries = {k: v for k, v in deliveries.items() if deliveries_now.get(k) == v}
    past = utc_now() - timedelta(seconds=1)
    with Session(engine) as session, session.begin():
        if inbox:
            session.execute(
                update(InboxEvent)
                .where(InboxEvent.id.in_(inbox), InboxEvent.status == InboxStatus.PENDING)
                .values(next_attempt_at=past)
                .execution_options(synchronize_session=False)
            )
        if deliveries:
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(deliveries), Delivery.status == DeliveryStatus.IN_FLIGHT)
                .values(lease_until=past)
                .execution_options(synchronize_session=False)
            )
    return len(inbox), len(deliveries)
