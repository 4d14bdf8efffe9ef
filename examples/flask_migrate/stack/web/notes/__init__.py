"""Notes: a small Flask application whose schema is managed by Flask-Migrate (Alembic).

`flask` finds the application through FLASK_APP=notes (set in the image) and this module's create_app().
The database URL is made from NOTES_DB_* variables; the password is read from the file NOTES_DB_PASSWORD_FILE and
never logged. Without that file (e.g. `flask db downgrade --sql` in a container without the secret) the URL has no
password: offline SQL needs only the dialect, and a real connection then fails with PostgreSQL's own error.
"""

import os

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import URL

# The migrations directory: /app/migrations in the image, whatever the working directory.
MIGRATIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")

db = SQLAlchemy()
migrate = Migrate()


def read_password(path):
    """The password in the file, without surrounding white space; None when there is no readable file."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def database_url():
    env = os.environ
    return URL.create(
        "postgresql+psycopg2",
        username=env.get("NOTES_DB_USER", "notes"),
        password=read_password(env.get("NOTES_DB_PASSWORD_FILE", "/run/secrets/db_password")),
        host=env.get("NOTES_DB_HOST", "db"),
        port=int(env.get("NOTES_DB_PORT", "5432")),
        database=env.get("NOTES_DB_NAME", "notes"),
    )


def release():
    try:
        with open(os.path.join(os.path.dirname(MIGRATIONS), "RELEASE"), encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return os.environ.get("NOTES_RELEASE", "unknown")


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url()
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 3}}
    app.config["NOTES_RELEASE"] = release()
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS)

    from notes import models  # noqa: F401  (the tables, for Flask-Migrate's autogenerate)
    from notes.api import bp

    app.register_blueprint(bp)
    return app
