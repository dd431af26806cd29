"""A user's label and note per run; a step run's wall time split into kernel wait and compute.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_NEW = {
    "runs": (sa.Column("name", sa.String(255)), sa.Column("note", sa.Text)),
    "step_runs": (sa.Column("kernel_wait_s", sa.Float), sa.Column("compute_s", sa.Float)),
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, columns in _NEW.items():
        # A store made by create_all from a newer schema, then stamped, already has them.
        have = {c["name"] for c in inspector.get_columns(table)}
        for column in columns:
            if column.name not in have:
                op.add_column(table, column)


def downgrade() -> None:
    for table, columns in _NEW.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_column(column.name)
