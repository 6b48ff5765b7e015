"""Recording gate decisions: one row per change, contact and direction, plus the metric."""

from sqlalchemy.ext.asyncio import AsyncSession

from syncgate.metrics import DECISIONS
from syncgate.sync.gate import Direction, Outcome
from syncgate.sync.models import Contact, DecisionRecord


def add_decision(
    session: AsyncSession,
    direction: Direction,
    outcome: Outcome,
    contact: Contact | None,
    source_event: str | None,
) -> DecisionRecord:
    detail: dict[str, object] = {"reason": outcome.reason}
    if outcome.values:
        detail["properties"] = sorted(outcome.values)
    record = DecisionRecord(
        direction=direction,
        decision=outcome.decision,
        contact=contact,
        source_event=source_event,
        detail=detail,
    )
    session.add(record)
    return record


def count_decisions(recorded: list[tuple[Direction, Outcome]]) -> None:
    """Move the decision metric once the transaction that recorded them has committed."""
    for direction, outcome in recorded:
        DECISIONS.labels(direction.value, outcome.decision.value).inc()
