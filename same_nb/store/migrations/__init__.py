"""Alembic migrations of the run store, applied by ``store.open_store`` (see ``env.py``)."""
