"""Alembic environment: migrations run on the connection ``store.Store`` passes in, inside its
write transaction (so concurrent openers queue instead of racing)."""
from alembic import context

from same_nb.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
