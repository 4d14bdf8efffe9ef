"""HTTP routes: GET /healthz, GET /, GET /notes, GET /notes/<id>, POST /notes."""

from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import text

from notes import MIGRATIONS, db
from notes.models import FEATURES, Note

bp = Blueprint("notes", __name__)
# The newest revision(s) of this release's migrations, read once.
HEADS = sorted(ScriptDirectory(MIGRATIONS).get_heads())


def one_line(exc):
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


@bp.get("/healthz")
def healthz():
    """200 when the database answers and its Alembic revision is this release's head, else 503."""
    checks = {"db": "not checked", "schema": "not checked"}
    revision = None
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            checks["db"] = "ok"
            revision = ",".join(sorted(row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))))
            checks["schema"] = "ok" if revision == ",".join(HEADS) else f"database at {revision or 'base'}, code at {','.join(HEADS)}"
    except Exception as exc:  # pylint: disable=broad-except  # the check reports any failure
        checks["db" if checks["db"] != "ok" else "schema"] = one_line(exc)
        current_app.logger.warning("health check failed: %s", one_line(exc))
    healthy = all(value == "ok" for value in checks.values())
    body = {"service": "web", "status": "ok" if healthy else "error", "version": current_app.config["NOTES_RELEASE"],
            "checks": checks, "alembic_revision": revision, "alembic_head": ",".join(HEADS)}
    return jsonify(body), 200 if healthy else 503


@bp.get("/")
def index():
    return jsonify({"app": "notes", "version": current_app.config["NOTES_RELEASE"], "features": FEATURES})


@bp.get("/notes")
def list_notes():
    return jsonify({"notes": [note.as_dict() for note in db.session.execute(db.select(Note).order_by(Note.id)).scalars()]})


@bp.get("/notes/<int:note_id>")
def get_note(note_id):
    note = db.session.get(Note, note_id)
    if note is None:
        return jsonify({"error": f"no note {note_id}"}), 404
    return jsonify(note.as_dict())


@bp.post("/notes")
def add_note():
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not isinstance(data.get("title"), str) or not data["title"].strip():
        return jsonify({"error": "send a JSON object with a non-empty string 'title'"}), 400
    if len(data["title"]) > 200:
        return jsonify({"error": "title is longer than 200 characters"}), 400
    note = Note.from_json(data)
    db.session.add(note)
    db.session.commit()
    return jsonify(note.as_dict()), 201
