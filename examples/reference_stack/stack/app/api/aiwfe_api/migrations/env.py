"""Alembic environment: connects with aiwfe_common.db (password from the secret file)."""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from aiwfe_common import db

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)


def run_migrations_offline():
    """`alembic upgrade --sql`: print the SQL, connect to nothing."""
    context.configure(dialect_name="postgresql", literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    # No URL with a password in it: the engine gets its connections from db.connect().
    engine = create_engine("postgresql+psycopg2://", creator=lambda: db.connect("alembic"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        # PostgreSQL has transactional DDL: one transaction for the whole run, so a failing
        # migration leaves the schema (and alembic_version) exactly as it was.
        context.configure(connection=connection, transaction_per_migration=False)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
