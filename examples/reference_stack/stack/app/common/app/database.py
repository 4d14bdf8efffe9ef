"""SQLAlchemy engine of the stack's database (connections come from aiwfe_common.db)."""

from sqlalchemy import create_engine, pool

from aiwfe_common import db

# Lazy: importing this module opens no connection; `engine.connect()` does.
engine = create_engine("postgresql+psycopg2://", creator=lambda: db.connect("app"), poolclass=pool.NullPool)
