"""segment members without foreign keys

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 23:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("segment_members", schema=None) as batch_op:
        batch_op.drop_constraint("fk_segment_members_contact_id_contacts", type_="foreignkey")
        batch_op.drop_constraint("fk_segment_members_segment_id_segments", type_="foreignkey")


def downgrade() -> None:
    op.execute("DELETE FROM segment_members WHERE segment_id NOT IN (SELECT id FROM segments)")
    with op.batch_alter_table("segment_members", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_segment_members_segment_id_segments",
            "segments",
            ["segment_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            "fk_segment_members_contact_id_contacts",
            "contacts",
            ["contact_id"],
            ["id"],
            ondelete="CASCADE",
        )
