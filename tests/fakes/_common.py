"""What both fakes share: the request log, fault injection, and an ASGI wrapper applying them.

The state objects are inspected from the test thread while uvicorn serves them from its own
thread, so every read or write of shared state happens under ``FakePlatform.lock``.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse, Response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class RecordedRequest:
    """One request as the fake saw it; ``status`` is filled in once the answer is sent."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float
    status: int | None = None
    faulted: bool = False  # answered by an injected fault, never reached the platform logic

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or None when it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def form(self) -> dict[str, str]:
        """The body parsed as application/x-www-form-urlencoded."""
        return dict(parse_qsl(self.body.decode("latin-1"), keep_blank_values=True))


@dataclass(frozen=True)
class WriteCall:
    """One write request that reached the platform logic (auth passed, no injected fault)."""

    method: str
    path: str
    operation: str  # e.g. "create", "update", "upsert"
    size: int  # records / inputs in the call
    status: int


@dataclass
class FaultRule:
    """An injected answer (or delay) for requests matching ``method``/``path``."""

    status: int | None  # None: delay only
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    remaining: int | None = 1  # None: forever
    path: str | None = None  # substring of the path; None: every API call (not the token endpoint)
    method: str | None = None
    delay: float = 0.0
    hits: int = 0

    def matches(self, method: str, path: str, is_api: bool) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path is None:
            return is_api
        return self.path in path


@dataclass
class ChaosRule:
    """Fail a random share of matching requests, reproducibly (seeded)."""

    probability: float
    statuses: tuple[int, ...]
    rng: random.Random
    path: str | None = None
    retry_after: str | None = None
    hits: int = 0


@dataclass(frozen=True)
class _FaultDecision:
    delay: float
    response: Response | None


class FakePlatform:
    """Base class: locking, the request log, write accounting and fault injection."""

    token_path: str = ""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._writes: list[WriteCall] = []
        self._faults: list[FaultRule] = []
        self._chaos: ChaosRule | None = None
        self._down: int | None = None  # every request, token endpoint included, gets this status

    # -- platform specifics (overridden) ---------------------------------------------------------

    def default_fault_body(self, status: int) -> Any:
        """The body a real platform sends with ``status`` when the test gives none."""
        raise NotImplementedError

    def is_api_path(self, path: str) -> bool:
        """Whether ``path`` is an API call (default fault target) rather than the token endpoint."""
        return path != self.token_path

    # -- fault injection -------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 503,
        body: Any = None,
        headers: dict[str, str] | None = None,
        path: str | None = None,
        method: str | None = None,
    ) -> FaultRule:
        """Answer the next ``n`` matching requests with ``status`` (and the platform's body).

        ``path`` is a substring of the request path; without it every API call matches but the
        token endpoint does not. ``body`` may be JSON-able data, or str/bytes sent verbatim.
        """
        rule = FaultRule(
            status=status,
            body=body,
            headers=dict(headers or {}),
            remaining=n,
            path=path,
            method=method,
        )
        with self.lock:
            self._faults.append(rule)
        return rule

    def delay_next(
        self,
        seconds: float,
        n: int = 1,
        *,
        path: str | None = None,
        method: str | None = None,
    ) -> FaultRule:
        """Hold the next ``n`` matching requests for ``seconds`` before answering them normally."""
        rule = FaultRule(status=None, remaining=n, path=path, method=method, delay=seconds)
        with self.lock:
            self._faults.append(rule)
        return rule

    def fail_rate(
        self,
        probability: float,
        *,
        seed: int = 0,
        statuses: Iterable[int] = (500, 503),
        path: str | None = None,
        retry_after: str | None = None,
    ) -> ChaosRule | None:
        """Fail about ``probability`` of matching API calls with one of ``statuses`` (0: off).

        The choice of victims is drawn from ``random.Random(seed)``, so a run can be replayed.
        """
        with self.lock:
            if probability <= 0:
                self._chaos = None
                return None
            self._chaos = ChaosRule(
                probability=probability,
                statuses=tuple(statuses),
                rng=random.Random(seed),
                path=path,
                retry_after=retry_after,
            )
            return self._chaos

    def go_down(self, status: int = 503) -> None:
        """The whole platform is down (a maintenance window): every request, the token endpoint
        included, is answered with ``status`` and the platform's body, until ``come_back()``."""
        with self.lock:
            self._down = status

    def come_back(self) -> None:
        with self.lock:
            self._down = None

    def clear_faults(self) -> None:
        """Drop every pending fault, delay and chaos rule (platform-specific rules included)."""
        with self.lock:
            self._faults.clear()
            self._chaos = None
            self._down = None

    # -- inspection ------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, oldest first (a copy)."""
        with self.lock:
            return list(self._requests)

    def requests_to(self, path_part: str, method: str | None = None) -> list[RecordedRequest]:
        """Requests whose path contains ``path_part`` (and with ``method``, when given)."""
        return [
            r
            for r in self.requests
            if path_part in r.path and (method is None or r.method == method.upper())
        ]

    @property
    def writes(self) -> list[WriteCall]:
        """Write calls that reached the platform logic, oldest first (a copy)."""
        with self.lock:
            return list(self._writes)

    @property
    def write_calls(self) -> int:
        """How many write calls reached the platform logic."""
        with self.lock:
            return len(self._writes)

    def clear_log(self) -> None:
        """Forget recorded requests and write calls (state and faults stay)."""
        with self.lock:
            self._requests.clear()
            self._writes.clear()

    # -- used by the apps ------------------------------------------------------------------------

    def record_write(self, method: str, path: str, operation: str, size: int, status: int) -> None:
        with self.lock:
            self._writes.append(WriteCall(method, path, operation, size, status))

    def _record(self, scope: Scope, body: bytes) -> RecordedRequest:
        raw_query = scope.get("query_string", b"").decode("latin-1")
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        entry = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(raw_query, keep_blank_values=True)),
            headers=headers,
            body=body,
            at=time.time(),
        )
        with self.lock:
            self._requests.append(entry)
        return entry

    def _decide_fault(self, entry: RecordedRequest) -> _FaultDecision:
        is_api = self.is_api_path(entry.path)
        with self.lock:
            if self._down is not None:
                entry.faulted = True
                return _FaultDecision(0.0, self._fault_response(self._down, None, {}))
            delay = 0.0
            for rule in self._faults:
                if not rule.matches(entry.method, entry.path, is_api):
                    continue
                rule.hits += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
                if rule.status is None:
                    delay += rule.delay
                    continue
                entry.faulted = True
                return _FaultDecision(
                    delay, self._fault_response(rule.status, rule.body, rule.headers)
                )
            self._faults = [r for r in self._faults if r.remaining is None or r.remaining > 0]
            chaos = self._chaos
            targeted = chaos is not None and (chaos.path in entry.path if chaos.path else is_api)
            if chaos is not None and targeted and chaos.rng.random() < chaos.probability:
                chaos.hits += 1
                status = chaos.rng.choice(chaos.statuses)
                headers = {"Retry-After": chaos.retry_after} if chaos.retry_after else {}
                entry.faulted = True
                return _FaultDecision(delay, self._fault_response(status, None, headers))
            return _FaultDecision(delay, None)

    def _fault_response(self, status: int, body: Any, headers: dict[str, str]) -> Response:
        if body is None:
            body = self.default_fault_body(status)
        if isinstance(body, str | bytes):
            return Response(body, status_code=status, headers=headers, media_type="text/html")
        return JSONResponse(body, status_code=status, headers=headers)


class FaultMiddleware:
    """ASGI wrapper: log every request, then apply injected delays and failures before the app."""

    def __init__(self, app: ASGIApp, fake: FakePlatform) -> None:
        self.app = app
        self.fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        entry = self.fake._record(scope, body)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry.status = int(message["status"])
            await send(message)

        decision = self.fake._decide_fault(entry)
        if decision.delay:
            await asyncio.sleep(decision.delay)
        if decision.response is not None:
            await decision.response(scope, replay, capture)
            return
        await self.app(scope, replay, capture)


def parse_json(body: bytes) -> tuple[Any, str | None]:
    """Parse a request body; return (value, None) or (None, a parser message)."""
    if not body:
        return None, "No content to map due to end-of-input"
    try:
        return json.loads(body), None
    except ValueError as error:
        return None, str(error)
