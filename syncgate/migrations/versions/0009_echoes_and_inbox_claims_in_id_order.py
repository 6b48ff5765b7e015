"""contacts remember the delivery awaiting its echo; inbox claims in id order by index;
property numbers indexed only where there is one

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("salesforce_echo_of", sa.BigInteger(), nullable=True))
    op.create_index("ix_inbox_events_status_id", "inbox_events", ["status", "id"])
    # Number comparisons never match a NULL, and most values are no number: index only numbers.
    op.drop_index("ix_contact_properties_name_number", table_name="contact_properties")
    op.create_index(
        "ix_contact_properties_name_number",
        "contact_properties",
        ["name", "value_number"],
        postgresql_where=sa.text("value_number IS NOT NULL"),
        sqlite_where=sa.text("value_number IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_contact_properties_name_number", table_name="contact_properties")
    op.create_index(
        "ix_contact_properties_name_number", "contact_properties", ["name", "value_number"]
    )
    op.drop_index("ix_inbox_events_status_id", table_name="inbox_events")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("salesforce_echo_of")
