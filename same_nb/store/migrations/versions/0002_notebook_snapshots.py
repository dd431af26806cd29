"""Notebook snapshots by sha256 (for `same-nb rerun`).

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "notebook_snapshots" in sa.inspect(op.get_bind()).get_table_names():
        return      # made by create_all in a development build before this revision existed
    op.create_table(
        "notebook_snapshots",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notebook_snapshots")
