"""Failed authentications, throttled per client address and for all addresses together.

Each kind of credential (the admin token, HubSpot's signatures, Salesforce's token and org id)
has its own budget, so a flood of forged webhooks never locks operators out of the console.
Within one kind, an address that keeps failing is refused (429 with Retry-After) without its
credential being checked, so guessing stops there; addresses that rotate meet the global budget.
The budgets are token buckets in this process (one per replica) and remember a bounded number
of addresses, least recently failed forgotten first, so rotating addresses cannot grow them.
"""

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from enum import StrEnum

from fastapi import Request

from syncgate.config import Settings
from syncgate.errors import AppError
from syncgate.security.guard import client_address, note_refusal

# A few hundred bytes each: with three kinds of credential, a flood of addresses can take a
# few megabytes at most.
MAX_TRACKED_ADDRESSES = 10_000


class Credential(StrEnum):
    ADMIN = "admin token"
    HUBSPOT = "HubSpot signature"
    SALESFORCE = "Salesforce token or org id"


class TooManyFailures(AppError):
    status_code = 429
    code = "too_many_failed_authentications"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed authentications; retry in {retry_after} s",
            retry_after=retry_after,
        )
        self.headers = {"Retry-After": str(retry_after)}


class _Bucket:
    """`capacity` failures at once, refilled at `capacity` a minute."""

    __slots__ = ("capacity", "tokens", "updated")

    def __init__(self, capacity: int, now: float) -> None:
        self.capacity = capacity
        self.tokens = float(capacity)
        self.updated = now

    def wait(self, now: float) -> float:
        """Seconds until the next failure fits; 0 when it does now."""
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) * 60 / self.capacity

    def spend(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.capacity / 60)
        self.updated = now


class FailureBudget:
    """`per_address` failures a minute from one address, `overall` from all of them together."""

    def __init__(
        self,
        per_address: int,
        overall: int,
        *,
        max_addresses: int = MAX_TRACKED_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_address = per_address
        self._max_addresses = max_addresses
        self._clock = clock
        self._overall = _Bucket(overall, clock())
        self._addresses: OrderedDict[str, _Bucket] = OrderedDict()

    def retry_after(self, address: str) -> float:
        """Seconds before `address` may try again; 0 when it may now."""
        now = self._clock()
        bucket = self._addresses.get(address)
        own = bucket.wait(now) if bucket is not None else 0.0
        return max(own, self._overall.wait(now))

    def record_failure(self, address: str) -> None:
        now = self._clock()
        self._overall.spend(now)
        bucket = self._addresses.pop(address, None)
        if bucket is None:
            if len(self._addresses) >= self._max_addresses:
                self._addresses.popitem(last=False)
            bucket = _Bucket(self._per_address, now)
        bucket.spend(now)
        self._addresses[address] = bucket  # the most recently failed last

    @property
    def tracked_addresses(self) -> int:
        return len(self._addresses)


class Throttle:
    """One failure budget per kind of credential."""

    def __init__(self, settings: Settings) -> None:
        self._budgets = {
            credential: FailureBudget(
                settings.auth_failures_per_address, settings.auth_failures_global
            )
            for credential in Credential
        }

    def __getitem__(self, credential: Credential) -> FailureBudget:
        return self._budgets[credential]


def _budget(request: Request, credential: Credential) -> FailureBudget:
    throttle: Throttle = request.app.state.throttle
    return throttle[credential]


def refuse_if_throttled(request: Request, credential: Credential) -> None:
    """429 before the credential is even looked at, while its budget is spent."""
    wait = _budget(request, credential).retry_after(client_address(request.scope))
    if wait > 0:
        note_refusal(request, f"too many failed authentications ({credential})")
        raise TooManyFailures(math.ceil(wait))


def record_failure(request: Request, credential: Credential, reason: str) -> None:
    """Count a failed authentication against the client's and the global budget."""
    _budget(request, credential).record_failure(client_address(request.scope))
    note_refusal(request, reason)
