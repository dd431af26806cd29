"""The sweep a run belongs to; a step run's resources (peak memory, CPU time, artifact bytes).

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_NEW = {
    "runs": (sa.Column("sweep_id", sa.String(64)),),
    "step_runs": (sa.Column("peak_rss_bytes", sa.BigInteger), sa.Column("cpu_s", sa.Float),
                  sa.Column("bytes_in", sa.BigInteger), sa.Column("bytes_out", sa.BigInteger)),
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, columns in _NEW.items():
        # A store made by create_all from a newer schema, then stamped, already has them.
        have = {c["name"] for c in inspector.get_columns(table)}
        for column in columns:
            if column.name not in have:
                op.add_column(table, column)
    if "ix_runs_sweep_id" not in {i["name"] for i in inspector.get_indexes("runs")}:
        op.create_index("ix_runs_sweep_id", "runs", ["sweep_id"])


def downgrade() -> None:
    op.drop_index("ix_runs_sweep_id", table_name="runs")
    for table, columns in _NEW.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_column(column.name)
