"""Retry policy as data: capped exponential backoff with jitter, `Retry-After` honoured."""

import random
from datetime import timedelta

from syncgate.config import Settings


def retry_delay(config: Settings, attempts: int, retry_after: float | None = None) -> timedelta:
    """How long to wait before attempt `attempts + 1`: never sooner than the platform asked."""
    # The exponent is capped: 2 ** 1024 is beyond a float, and the cap is hit long before.
    exponent = min(max(attempts - 1, 0), 60)
    ceiling = min(config.retry_max_seconds, config.retry_base_seconds * 2**exponent)
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, config.retry_max_seconds))
    return timedelta(seconds=delay)
