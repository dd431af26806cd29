"""Baseline: the schema the store had before migrations (runs, step runs, artifacts, edges,
metrics). Stores created by ``create_all`` back then are stamped with this revision.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("notebook_path", sa.String(4096), nullable=False),
        sa.Column("notebook_sha256", sa.String(64), nullable=False),
        sa.Column("pipeline_name", sa.String(255), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("started_at", _TIME),
        sa.Column("finished_at", _TIME),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("user", sa.String(255)),
        sa.Column("host", sa.String(255)),
        sa.Column("pid", sa.Integer),
        sa.Column("pid_started", sa.BigInteger),
        sa.Column("run_dir", sa.String(4096)),
        sa.Column("remote_id", sa.String(255)),
        sa.Column("remote_url", sa.String(4096)),
        sa.Column("error", sa.Text),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_index("ix_runs_notebook_path_id", "runs", ["notebook_path", "id"])
    op.create_index("ix_runs_status_host", "runs", ["status", "host"])
    op.create_table(
        "step_runs",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("step_name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("started_at", _TIME),
        sa.Column("finished_at", _TIME),
        sa.Column("duration_s", sa.Float),
        sa.Column("cache_hit", sa.Boolean, nullable=False),
        sa.Column("cache_key", sa.String(128)),
        sa.Column("cache_info", sa.JSON),
        sa.Column("reason", sa.Text),
        sa.Column("executed_notebook", sa.String(4096)),
        sa.Column("log_path", sa.String(4096)),
        sa.Column("error", sa.JSON),
        sa.Column("code_sha256", sa.String(64)),
    )
    op.create_index("ix_step_runs_run_id", "step_runs", ["run_id"])
    op.create_index("ix_step_runs_cache_key", "step_runs", ["cache_key"])
    op.create_index("ix_step_runs_step_name_run_id", "step_runs", ["step_name", "run_id"])
    op.create_table(
        "artifacts",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(64)),
        sa.Column("type", sa.String(255)),
        sa.Column("size", sa.BigInteger),
        sa.Column("location", sa.String(4096)),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_table(
        "step_run_artifacts",
        sa.Column("step_run_id", _BIG_ID, sa.ForeignKey("step_runs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("direction", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(1024), primary_key=True),
        sa.Column("artifact_sha256", sa.String(64), sa.ForeignKey("artifacts.sha256"),
                  nullable=False),
        sa.Column("role", sa.String(32)),
    )
    op.create_index("ix_step_run_artifacts_sha256", "step_run_artifacts", ["artifact_sha256"])
    op.create_table(
        "metrics",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("step_run_id", _BIG_ID, sa.ForeignKey("step_runs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("step", sa.Integer),
        sa.Column("logged_at", _TIME, nullable=False),
    )
    op.create_index("ix_metrics_step_run_id_name", "metrics", ["step_run_id", "name"])


def downgrade() -> None:
    for table in ("metrics", "step_run_artifacts", "artifacts", "step_runs", "runs"):
        op.drop_table(table)
