"""The retry policy: capped exponential backoff with jitter, Retry-After honoured."""

import pytest

from syncgate.config import Settings
from syncgate.delivery.retry import retry_delay

CONFIG = Settings(retry_base_seconds=2, retry_max_seconds=100, _env_file=None)


@pytest.mark.parametrize(("attempts", "ceiling"), [(1, 2), (2, 4), (3, 8), (6, 64), (7, 100)])
def test_the_delay_doubles_per_attempt_with_jitter_up_to_the_cap(
    attempts: int, ceiling: float
) -> None:
    delays = [retry_delay(CONFIG, attempts).total_seconds() for _ in range(200)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert max(delays) - min(delays) > ceiling / 10  # jittered, not in lock-step


def test_retry_after_is_a_lower_bound_capped_at_the_maximum() -> None:
    assert retry_delay(CONFIG, 1, retry_after=30).total_seconds() == 30
    assert 50 <= retry_delay(CONFIG, 7, retry_after=0).total_seconds() <= 100
    assert retry_delay(CONFIG, 1, retry_after=86_400).total_seconds() == 100


def test_a_huge_attempt_count_stays_at_the_cap() -> None:
    assert 50 <= retry_delay(CONFIG, 5_000).total_seconds() <= 100
