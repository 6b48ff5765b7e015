"""console sign-outs

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_sign_outs",
        sa.Column("session_digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_digest", name=op.f("pk_console_sign_outs")),
    )
    with op.batch_alter_table("console_sign_outs", schema=None) as batch_op:
        batch_op.create_index("ix_console_sign_outs_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("console_sign_outs", schema=None) as batch_op:
        batch_op.drop_index("ix_console_sign_outs_expires_at")

    op.drop_table("console_sign_outs")
