"""Recording gate decisions: one row per change, contact and direction, plus the metric."""

from sqlalchemy.ext.asyncio import AsyncConnection

from syncgate.db import insert_rows
from syncgate.metrics import DECISIONS
from syncgate.models import table_of, utc_now
from syncgate.sync.contacts import ContactState
from syncgate.sync.decide.outcomes import Direction, Outcome
from syncgate.sync.models import DecisionRecord

_DECISIONS = table_of(DecisionRecord)


class DecisionLog:
    """The decisions of a batch, written in one statement; counted once it has committed."""

    def __init__(self) -> None:
        self._rows: list[tuple[Direction, Outcome, ContactState | None, str | None]] = []

    def __len__(self) -> int:
        return len(self._rows)

    def add(
        self,
        direction: Direction,
        outcome: Outcome,
        contact: ContactState | None,
        source_event: str | None,
    ) -> None:
        self._rows.append((direction, outcome, contact, source_event))

    def outcomes_since(self, mark: int) -> list[Outcome]:
        return [outcome for _, outcome, _, _ in self._rows[mark:]]

    async def write(self, connection: AsyncConnection) -> None:
        """Insert every decision (contacts must have their ids by now)."""
        if not self._rows:
            return
        now = utc_now()
        rows = []
        for direction, outcome, contact, source_event in self._rows:
            detail: dict[str, object] = {"reason": outcome.reason}
            if outcome.values:
                detail["properties"] = sorted(outcome.values)
            rows.append(
                {
                    "at": now,
                    "direction": direction.value,
                    "decision": outcome.decision.value,
                    "contact_id": contact.id if contact is not None else None,
                    "source_event": source_event,
                    "detail": detail,
                }
            )
        await insert_rows(connection, _DECISIONS, rows)

    def count(self) -> None:
        """Move the decision metric (call once the transaction that wrote them committed)."""
        for direction, outcome, _, _ in self._rows:
            DECISIONS.labels(direction.value, outcome.decision.value).inc()
