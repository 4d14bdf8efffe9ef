import logging
from logging.config import fileConfig

from flask import current_app
from sqlalchemy.engine import make_url

from alembic import context

# Flask-Migrate's template env.py (flask-migrate 4.0.4), adapted to Flask-SQLAlchemy 3.0.3 and to offline mode:
# - the engine is db.engine (get_engine() and its Flask-SQLAlchemy<3 fallback are gone);
# - the database URL is never copied into the Alembic config (sqlalchemy.url): it holds the password, and nothing
#   here needs it there;
# - offline mode (`flask db downgrade --sql FROM:TO`) configures Alembic with the dialect of the application's
#   database URL only: no connection, no password, no database needed.

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# Interpret the config file for Python logging.
# This line sets up loggers basically.
fileConfig(config.config_file_name)
logger = logging.getLogger('alembic.env')

target_db = current_app.extensions['migrate'].db

# other values from the config, defined by the needs of env.py,
# can be acquired:
# my_important_option = config.get_main_option("my_important_option")
# ... etc.


def get_metadata():
    if hasattr(target_db, 'metadatas'):
        return target_db.metadatas[None]
    return target_db.metadata


def run_migrations_offline():
    """Run migrations in 'offline' mode.

    Alembic is configured with the dialect name of the application's
    database URL alone: no Engine, no connection, no password.

    Calls to context.execute() here emit the given string to the
    script output.

    """
    url = make_url(current_app.config['SQLALCHEMY_DATABASE_URI'])
    context.configure(
        dialect_name=url.get_backend_name(),
        target_metadata=get_metadata(),
        literal_binds=True,
    )

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run migrations in 'online' mode.

    In this scenario we need to create an Engine
    and associate a connection with the context.

    """

    # this callback is used to prevent an auto-migration from being generated
    # when there are no changes to the schema
    # reference: http://alembic.zzzcomputing.com/en/latest/cookbook.html
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, 'autogenerate', False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info('No changes in schema detected.')

    connectable = target_db.engine

    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=get_metadata(),
            process_revision_directives=process_revision_directives,
            **current_app.extensions['migrate'].configure_args
        )

        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
