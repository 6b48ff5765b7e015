"""deliveries claimed in id order; the inbox's claim index is the only one it needs, and its
pages keep room for a claim's lease

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 21:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_deliveries_claim", table_name="deliveries")
    op.create_index("ix_deliveries_claim", "deliveries", ["target", "status", "id"])
    # Rounds claim by (status, id) since 0009: this one only cost every write to the inbox.
    op.drop_index("ix_inbox_events_status_next_attempt_at", table_name="inbox_events")
    if op.get_bind().dialect.name == "postgresql":
        # A claim's lease changes no indexed column: with room on its page, PostgreSQL writes
        # the new version there and touches no index (a HOT update). Pages written from now on.
        op.execute("ALTER TABLE inbox_events SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE inbox_events RESET (fillfactor)")
    op.create_index(
        "ix_inbox_events_status_next_attempt_at", "inbox_events", ["status", "next_attempt_at"]
    )
    op.drop_index("ix_deliveries_claim", table_name="deliveries")
    op.create_index("ix_deliveries_claim", "deliveries", ["target", "status", "next_attempt_at"])
