#!/bin/sh
# Start of the notes web service, on every start: bring the database to the head of this release's migrations
# (Flask-Migrate: `flask db upgrade`, one transaction), then serve HTTP on port 5000. A failing upgrade exits 1
# (restart loop, Alembic's error in the logs) and the server never starts.
set -eu
trap 'exit 143' TERM INT
echo "notes: flask db upgrade (release ${NOTES_RELEASE:-unknown})" >&2
flask db upgrade
exec python3 -m notes.server
