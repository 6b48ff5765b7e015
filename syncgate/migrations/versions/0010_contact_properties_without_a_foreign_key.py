"""contact properties without a foreign key

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 14:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact_properties", schema=None) as batch_op:
        batch_op.drop_constraint("fk_contact_properties_contact_id_contacts", type_="foreignkey")


def downgrade() -> None:
    op.execute("DELETE FROM contact_properties WHERE contact_id NOT IN (SELECT id FROM contacts)")
    with op.batch_alter_table("contact_properties", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_contact_properties_contact_id_contacts",
            "contacts",
            ["contact_id"],
            ["id"],
            ondelete="CASCADE",
        )
