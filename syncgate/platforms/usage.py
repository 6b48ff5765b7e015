"""A platform's daily API allowance as it last reported it (both clients read it from headers)."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ApiUsage:
    used: int
    allowed: int
    at: datetime

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.allowed if self.allowed > 0 else 100.0
