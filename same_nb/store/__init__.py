"""Run store: runs, step runs, content-addressed artifacts, lineage edges and metrics (SQLAlchemy over
SQLite or PostgreSQL, Alembic migrations), and what is read from it: trace, compare, rerun,
same.yaml datasets, OpenLineage events.

May import: ``same_nb.runtime`` (artifact hashing, the file-I/O records), ``same_nb.frontend`` (the IR,
SAME's dataset form), ``same_nb.errors``,
``same_nb._version``. Operations that need a target (rerun's local run) receive it as an argument.
Nothing heavy (SQLAlchemy) is imported here: ``same_nb.store.database`` does that.
"""
