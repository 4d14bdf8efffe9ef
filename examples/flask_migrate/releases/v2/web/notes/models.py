"""The tables of this release (migrations 3f6c1a9e2b70: notes(id, title); 8d2e4b7a1c95: notes.body)."""

from notes import db

FEATURES = ["body"]


class Note(db.Model):
    __tablename__ = "notes"

    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(200), nullable=False)
    # Added by 8d2e4b7a1c95; notes written before it have none (null).
    body = db.Column(db.Text, nullable=True)

    @classmethod
    def from_json(cls, data):
        body = data.get("body")
        return cls(title=data["title"], body=body if isinstance(body, str) else None)

    def as_dict(self):
        return {"id": self.id, "title": self.title, "body": self.body}
